namespace Attention.Reference.Onnx.Ops;

/// <summary>The operator registry: every supported op_type and its implementation.</summary>
internal static class OnnxOps
{
    public static IReadOnlyDictionary<string, IOnnxOp> All { get; } = new IOnnxOp[]
    {
        new Conv(), new BatchNormalization(), new Gemm(), new MatMul(),
        new GlobalAveragePool(), new AveragePool(), new MaxPool(),
        new Reduce("ReduceMean", mean: true), new Reduce("ReduceSum", mean: false),
        new Unary("Relu"), new Unary("Sigmoid"), new Unary("Tanh"), new Unary("Abs"), new Unary("Exp"), new Unary("Sqrt"),
        new Unary("Neg"), new HardSigmoid(), new HardSwish(), new Clip(), new Identity("Identity"), new Identity("Dropout"),
        new Binary("Add"), new Binary("Sub"), new Binary("Mul"), new Binary("Div"), new Binary("Pow"), new Where(), new Equal(),
        new Softmax(), new Cast(),
        new Shape(), new Reshape(), new Flatten(), new Concat(), new Split(), new Slice(), new Transpose(),
        new Squeeze(), new Unsqueeze(), new Expand(), new Gather(), new Constant(), new ConstantOfShape(),
    }.ToDictionary(op => op.OpType, StringComparer.Ordinal);
}

/// <summary>Index arithmetic shared by the operators: numpy broadcasting, axes, element moves.</summary>
internal static class OnnxIndex
{
    /// <summary>The multidirectional (numpy) broadcast of <paramref name="shapes"/>.</summary>
    public static int[] Broadcast(params int[][] shapes)
    {
        int rank = shapes.Max(s => s.Length);
        var result = new int[rank];
        for (int d = 0; d < rank; d++)
        {
            int dim = 1;
            foreach (var s in shapes)
            {
                int k = d - (rank - s.Length);
                if (k < 0) continue;
                int v = s[k];
                if (v == dim || v == 1) continue;
                if (dim != 1) throw new ArgumentException($"shapes {string.Join(" and ", shapes.Select(s => ShapeUtil.Format(s)))} do not broadcast");
                dim = v;
            }
            result[d] = shapes.Any(s => d - (rank - s.Length) >= 0 && s[d - (rank - s.Length)] == 0) ? 0 : dim;
        }
        return result;
    }

    /// <summary>For each element of <paramref name="outShape"/> (row-major), the flat index of the element of <paramref name="inShape"/> broadcast onto it.</summary>
    public static int[] BroadcastIndex(int[] outShape, int[] inShape)
    {
        int rank = outShape.Length, n = ShapeUtil.Volume(outShape, "shape");
        var strides = new int[rank];
        int stride = 1;
        for (int d = inShape.Length - 1; d >= 0; d--)
        {
            int od = d + rank - inShape.Length;
            strides[od] = inShape[d] == 1 && outShape[od] != 1 ? 0 : stride;
            stride *= inShape[d];
        }
        return Walk(outShape, strides, 0, n);
    }

    /// <summary>Offsets base + Σ idx[d]·strides[d] over every index of <paramref name="shape"/> in row-major order.</summary>
    public static int[] Walk(int[] shape, int[] strides, int @base, int n)
    {
        var index = new int[n];
        var counter = new int[shape.Length];
        int at = @base;
        for (int i = 0; i < n; i++)
        {
            index[i] = at;
            for (int d = shape.Length - 1; d >= 0; d--)
            {
                if (++counter[d] < shape[d]) { at += strides[d]; break; }
                at -= (shape[d] - 1) * strides[d];
                counter[d] = 0;
            }
        }
        return index;
    }

    /// <summary>Row-major strides of a shape.</summary>
    public static int[] Strides(int[] shape)
    {
        var s = new int[shape.Length];
        int stride = 1;
        for (int d = shape.Length - 1; d >= 0; d--) { s[d] = stride; stride *= shape[d]; }
        return s;
    }

    /// <summary>An axis in [−rank, rank) made non-negative.</summary>
    public static int Axis(long axis, int rank, string what)
    {
        if (axis < -rank || axis >= rank) throw new ArgumentException($"{what} {axis} is out of range for rank {rank}");
        return (int)(axis < 0 ? axis + rank : axis);
    }

    /// <summary>A new value of <paramref name="shape"/> whose element i is element index[i] of <paramref name="src"/> (any element kind).</summary>
    public static OnnxValue<T> Take<T>(OnnxValue<T> src, int[] shape, int[] index) where T : IFloatingPointIeee754<T>
    {
        if (src.Reals is { } r) return OnnxValue<T>.Real(src.ElementType, shape, index.Select(i => r[i]).ToArray());
        if (src.Ints is { } v) return OnnxValue<T>.Integer(src.ElementType, shape, index.Select(i => v[i]).ToArray());
        var b = src.Bools!;
        return OnnxValue<T>.Boolean(shape, index.Select(i => b[i]).ToArray());
    }

    /// <summary>The same elements under another shape.</summary>
    public static OnnxValue<T> WithShape<T>(OnnxValue<T> src, int[] shape) where T : IFloatingPointIeee754<T>
    {
        if (ShapeUtil.Volume(shape, "shape") != src.Length)
            throw new ArgumentException($"cannot view {src} as {ShapeUtil.Format(shape)}");
        return src.Reals is { } r ? OnnxValue<T>.Real(src.ElementType, shape, r)
            : src.Ints is { } v ? OnnxValue<T>.Integer(src.ElementType, shape, v)
            : OnnxValue<T>.Boolean(shape, src.Bools!);
    }

    /// <summary>A 1-D int64 value.</summary>
    public static OnnxValue<T> Int64s<T>(params long[] values) where T : IFloatingPointIeee754<T> =>
        OnnxValue<T>.Integer(OnnxElementType.Int64, [values.Length], values);

    /// <summary>The most elements one value may have (2^28: 2 GiB of float64), checked before it is allocated.</summary>
    public const long MaxElements = 1L << 28;

    /// <summary>The volume of a shape computed from the model's data, refused over <see cref="MaxElements"/> before any allocation.</summary>
    public static int CheckedVolume(IEnumerable<long> dims, string what)
    {
        long v = 1;
        foreach (var d in dims)
        {
            if (d < 0) throw new ArgumentException($"{what} has a negative dimension {d}");
            v = d == 0 || v == 0 ? 0 : v > MaxElements / d ? MaxElements + 1 : v * d;
        }
        if (v > MaxElements) throw new ArgumentException($"{what} [{string.Join(", ", dims)}] would hold more than {MaxElements} elements");
        return (int)v;
    }

    /// <summary>Checked int dimension from an int64.</summary>
    public static int Dim(long v, string what) =>
        v is >= 0 and <= int.MaxValue ? (int)v : throw new ArgumentException($"{what} {v} is not a valid dimension");
}
