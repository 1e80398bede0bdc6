namespace Attention.Reference.Tensors;

/// <summary>
/// A dense, contiguous, row-major (C order) tensor of <typeparamref name="T"/>. For four dimensions the layout is
/// NCHW: element (n, c, h, w) lives at ((n·C + c)·H + h)·W + w.
/// </summary>
/// <typeparam name="T">float (the fast path) or double (the oracle).</typeparam>
public sealed class DenseTensor<T> where T : IFloatingPointIeee754<T>
{
    private readonly int[] _shape;

    /// <summary>The elements in C order. Its length is the product of <see cref="Shape"/>.</summary>
    public T[] Data { get; }

    /// <summary>The shape, outermost dimension first.</summary>
    public ReadOnlySpan<int> Shape => _shape;

    /// <summary>The number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>The number of elements.</summary>
    public int Length => Data.Length;

    /// <summary>Creates a zero-filled tensor of the given shape.</summary>
    public DenseTensor(params int[] shape) : this(new T[ShapeUtil.Volume(shape, nameof(shape))], shape) { }

    /// <summary>Wraps <paramref name="data"/> (not copied) with the given shape.</summary>
    /// <exception cref="ArgumentException">The length of the data does not match the shape's volume.</exception>
    public DenseTensor(T[] data, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        long volume = ShapeUtil.Volume(shape, nameof(shape));
        if (volume != data.Length)
            throw new ArgumentException(
                $"Data of length {data.Length} does not fit shape {ShapeUtil.Format(shape)} ({volume} elements).", nameof(data));
        Data = data;
        _shape = (int[])shape.Clone();
    }

    /// <summary>The shape as a new array.</summary>
    public int[] ShapeArray() => (int[])_shape.Clone();

    /// <summary>Size of dimension <paramref name="axis"/>; negative axes count from the end.</summary>
    public int Dim(int axis) => _shape[axis < 0 ? _shape.Length + axis : axis];

    /// <summary>The data as a span.</summary>
    public Span<T> Span => Data;

    /// <summary>Element access for a rank-4 (NCHW) tensor.</summary>
    public ref T this[int n, int c, int h, int w]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ref Data[((n * _shape[1] + c) * _shape[2] + h) * _shape[3] + w];
    }

    /// <summary>Element access for a rank-2 tensor.</summary>
    public ref T this[int i, int j]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ref Data[i * _shape[1] + j];
    }

    /// <summary>A deep copy.</summary>
    public DenseTensor<T> Clone() => new((T[])Data.Clone(), _shape);

    /// <summary>A tensor that shares this one's data under another shape of the same volume.</summary>
    public DenseTensor<T> Reshape(params int[] shape) => new(Data, shape);

    /// <summary>A zero tensor with the same shape.</summary>
    public DenseTensor<T> ZerosLike() => new(_shape);

    /// <summary>True when the shapes are equal.</summary>
    public bool HasShape(ReadOnlySpan<int> shape) => _shape.AsSpan().SequenceEqual(shape);

    /// <summary>Converts every element to <typeparamref name="TOut"/> (rounding to nearest when narrowing).</summary>
    public DenseTensor<TOut> Cast<TOut>() where TOut : IFloatingPointIeee754<TOut>
    {
        if (typeof(TOut) == typeof(T)) return (DenseTensor<TOut>)(object)Clone();
        var result = new TOut[Data.Length];
        for (int i = 0; i < result.Length; i++) result[i] = TOut.CreateChecked(Data[i]);
        return new DenseTensor<TOut>(result, _shape);
    }

    /// <summary>Creates a tensor from values given as doubles (rounded to nearest for float).</summary>
    public static DenseTensor<T> FromDoubles(double[] values, params int[] shape)
    {
        var data = new T[values.Length];
        for (int i = 0; i < data.Length; i++) data[i] = T.CreateChecked(values[i]);
        return new DenseTensor<T>(data, shape);
    }

    /// <summary>The shape written as [a, b, c].</summary>
    public string ShapeString => ShapeUtil.Format(_shape);

    /// <inheritdoc />
    public override string ToString() => $"DenseTensor<{typeof(T).Name}>{ShapeString}";
}
