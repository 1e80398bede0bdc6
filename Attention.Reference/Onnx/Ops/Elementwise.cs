using Attention.Reference.Ops;

namespace Attention.Reference.Onnx.Ops;

/// <summary>
/// The one-input formulas, each as its spec writes it: Relu max(x, 0) (NaN kept, as PyTorch), Sigmoid
/// 1 / (1 + exp(−x)), Tanh, Abs, Exp, Sqrt, Neg — the same expressions the project's layers use
/// (<see cref="Activations"/>), so an exported module reproduces them bitwise.
/// </summary>
internal sealed class Unary(string opType) : IOnnxOp
{
    public string OpType => opType;

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.Input(0);
        if (x.Ints is { } ints && opType is "Abs" or "Neg" or "Relu")
            return [OnnxValue<T>.Integer(x.ElementType, x.Shape, ints.Select(v => opType == "Abs" ? Math.Abs(v) : opType == "Neg" ? -v : Math.Max(v, 0)).ToArray())];
        Func<T, T> f = opType switch
        {
            "Relu" => Activations.Relu,
            "Sigmoid" => Activations.Sigmoid,
            "Tanh" => T.Tanh,
            "Abs" => T.Abs,
            "Exp" => T.Exp,
            "Sqrt" => T.Sqrt,
            "Neg" => v => -v,
            _ => throw node.Error("unknown unary operator"),
        };
        var xs = node.RealInput(0).Reals!;
        return [node.RealLike(0, x.Shape, xs.Select(f).ToArray())];
    }
}

/// <summary>
/// HardSigmoid: y = max(0, min(1, α·x + β)), α = 0.2 and β = 0.5 by default. α and β are float32 attributes, used as
/// stored: PyTorch exports nn.Hardsigmoid with α = float32(1/6) = 0.16666667163…, 4.97e-9 above 1/6, so a float64
/// evaluation of the exported graph differs from PyTorch's float64 x/6 + 1/2 by up to 4.97e-9·|x| — a property of the
/// exported model, which this evaluator shows rather than hides.
/// </summary>
internal sealed class HardSigmoid : IOnnxOp
{
    public string OpType => "HardSigmoid";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        T alpha = node.Float("alpha", 0.2f), beta = node.Float("beta", 0.5f);
        var x = node.RealInput(0);
        return [node.RealLike(0, x.Shape, x.Reals!.Select(v => Clamp01(alpha * v + beta)).ToArray())];
    }

    /// <summary>max(0, min(1, v)), NaN kept.</summary>
    internal static T Clamp01<T>(T v) where T : IFloatingPointIeee754<T> => T.IsNaN(v) ? v : v < T.Zero ? T.Zero : v > T.One ? T.One : v;
}

/// <summary>
/// HardSwish: y = x · max(0, min(1, α·x + β)) with α = 1/6 and β = 0.5 fixed by the spec (no attributes), α the
/// float64 1/6 (in float32, float32(1/6)).
/// </summary>
internal sealed class HardSwish : IOnnxOp
{
    public string OpType => "HardSwish";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        T alpha = T.One / T.CreateChecked(6), beta = T.CreateChecked(0.5);
        var x = node.RealInput(0);
        return [node.RealLike(0, x.Shape, x.Reals!.Select(v => v * HardSigmoid.Clamp01(alpha * v + beta)).ToArray())];
    }
}

/// <summary>
/// Clip: y = min(max(x, min), max); min and max are attributes before opset 11 and optional scalar inputs since
/// (absent: no bound). NaN propagates, as numpy's clip and PyTorch's clamp.
/// </summary>
internal sealed class Clip : IOnnxOp
{
    public string OpType => "Clip";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.Input(0);
        OnnxValue<T>? Bound(int i)
        {
            var b = node.Optional(i);
            if (b is not null && b.Length != 1) throw node.Error($"input {i} must be a scalar, got {b}");
            return b;
        }
        var (lo, hi) = (Bound(1), Bound(2));
        if (x.Ints is { } ints)
        {
            long l = lo?.Ints?[0] ?? long.MinValue, h = hi?.Ints?[0] ?? long.MaxValue;
            return [OnnxValue<T>.Integer(x.ElementType, x.Shape, ints.Select(v => Math.Min(Math.Max(v, l), h)).ToArray())];
        }
        T min = lo is { Reals: { } lr } ? lr[0] : node.Has("min") ? node.Float("min", 0f) : T.NegativeInfinity;
        T max = hi is { Reals: { } hr } ? hr[0] : node.Has("max") ? node.Float("max", 0f) : T.PositiveInfinity;
        var xs = node.RealInput(0).Reals!;
        return [node.RealLike(0, x.Shape, xs.Select(v => T.IsNaN(v) ? v : v < min ? min : v > max ? max : v).ToArray())];
    }
}

/// <summary>Identity, and Dropout at inference (its input unchanged; the optional mask output all true).</summary>
internal sealed class Identity(string opType) : IOnnxOp
{
    public string OpType => opType;

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.Input(0);
        if (opType == "Dropout")
        {
            if (node.Optional(2) is { } training && training.Bools is { Length: 1 } tb && tb[0])
                throw node.Error("training_mode = true is not supported (inference only)");
            if (node.Opset < 7 && node.Int("is_test", 0) == 0) throw node.Error("is_test = 0 is not supported (inference only)");
            return [x, OnnxValue<T>.Boolean(x.Shape, Enumerable.Repeat(true, x.Length).ToArray())];
        }
        return [x];
    }
}

/// <summary>
/// Softmax along <c>axis</c>: exp(x − max) / Σ exp(x − max), the sum sequential in increasing index from 0. Opset 13
/// and later normalise along the one axis (default −1); earlier opsets over the flattened axes ≥ axis (default 1).
/// </summary>
internal sealed class Softmax : IOnnxOp
{
    public string OpType => "Softmax";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.RealInput(0);
        var xs = x.Reals!;
        var y = new T[xs.Length];
        int rank = Math.Max(1, x.Rank);
        var shape = x.Rank == 0 ? new[] { 1 } : x.Shape;
        int axis = OnnxIndex.Axis(node.Int("axis", node.Opset >= 13 ? -1 : 1), rank, "axis");
        int outer, len, inner;
        if (node.Opset >= 13)
        {
            outer = shape[..axis].Aggregate(1, (p, d) => p * d);
            len = shape[axis];
            inner = shape[(axis + 1)..].Aggregate(1, (p, d) => p * d);
        }
        else
        {
            outer = shape[..axis].Aggregate(1, (p, d) => p * d);
            len = shape[axis..].Aggregate(1, (p, d) => p * d);
            inner = 1;
        }
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int at(int k) => (o * len + k) * inner + i;
                T max = T.NegativeInfinity;
                for (int k = 0; k < len; k++) if (xs[at(k)] > max || T.IsNaN(xs[at(k)])) max = xs[at(k)];
                T sum = T.Zero;
                for (int k = 0; k < len; k++) { y[at(k)] = T.Exp(xs[at(k)] - max); sum += y[at(k)]; }
                for (int k = 0; k < len; k++) y[at(k)] /= sum;
            }
        return [node.RealLike(0, x.Shape, y)];
    }
}

/// <summary>
/// Cast to <c>to</c>: between float32 and float64 only the declared type changes (every floating value is held in the
/// evaluation type: the oracle does not round a float64 value to float32 because the graph says FLOAT); to float16
/// and bfloat16, an explicit quantisation, values are rounded to nearest even; floating to integer truncates toward
/// zero (NaN and out-of-range values are refused); integer and bool convert exactly.
/// </summary>
internal sealed class Cast : IOnnxOp
{
    public string OpType => "Cast";

    private static float ToBFloat16(float v)
    {
        if (float.IsNaN(v)) return v;
        uint bits = BitConverter.SingleToUInt32Bits(v);
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000;
        return BitConverter.UInt32BitsToSingle(bits);
    }

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.Input(0);
        var to = (OnnxElementType)node.Int("to", 0);
        if (OnnxTensors.SizeOf(to) == 0) throw node.Error($"cast to {OnnxTensors.Describe((int)to)} is not supported");
        double[] d = x.ToDoubles();
        if (OnnxValue<T>.IsRealType(to))
        {
            var r = x.Reals ?? d.Select(T.CreateChecked).ToArray();
            // float16 and bfloat16 are explicit quantisation: rounded to nearest even, as every backend does.
            if (to == OnnxElementType.Float16) r = r.Select(v => T.CreateChecked((float)(Half)float.CreateTruncating(v))).ToArray();
            if (to == OnnxElementType.BFloat16) r = r.Select(v => T.CreateChecked(ToBFloat16(float.CreateTruncating(v)))).ToArray();
            return [OnnxValue<T>.Real(to, x.Shape, r)];
        }
        if (to == OnnxElementType.Bool)
            return [OnnxValue<T>.Boolean(x.Shape, d.Select(v => v != 0).ToArray())];
        if (x.Ints is { } ints) return [OnnxValue<T>.Integer(to, x.Shape, ints)];
        return [OnnxValue<T>.Integer(to, x.Shape, d.Select(v => double.IsFinite(v) && Math.Abs(v) < 9.2e18
            ? (long)Math.Truncate(v) : throw node.Error($"cannot cast {v} to {to}")).ToArray())];
    }
}
