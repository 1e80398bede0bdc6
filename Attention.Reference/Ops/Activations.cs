using Attention.Reference.Kernels.Conv;

namespace Attention.Reference.Ops;

/// <summary>
/// Scalar activations and their derivatives, forward and backward side by side (docs/derivations/pooling-and-activations.md).
/// Each is the literal expression PyTorch evaluates, with PyTorch's choice at every kink.
/// </summary>
public static class Activations
{
    /// <summary>Eq. (act.1): σ(v) = 1 / (1 + exp(−v)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Sigmoid<T>(T v) where T : IFloatingPointIeee754<T> => T.One / (T.One + T.Exp(-v));

    /// <summary>Eq. (act.2): σ'(v) expressed through the output s = σ(v): (1 − s)·s, as ATen's sigmoid_backward.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T SigmoidGradFromOutput<T>(T s) where T : IFloatingPointIeee754<T> => (T.One - s) * s;

    /// <summary>
    /// Eq. (act.3): relu(v) = max(v, 0); relu'(v) = 1 for v &gt; 0, else 0 (relu'(0) = 0). relu(NaN) = NaN, as
    /// PyTorch's clamp_min(0) (which propagates NaN).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Relu<T>(T v) where T : IFloatingPointIeee754<T> => v > T.Zero ? v : (T.IsNaN(v) ? v : T.Zero);

    /// <summary>Eq. (act.3): relu'(v), with relu'(0) = 0 (and 0 for NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T ReluGrad<T>(T v) where T : IFloatingPointIeee754<T> => v > T.Zero ? T.One : T.Zero;

    /// <summary>Eq. (act.4): ReLU6(v) = min(max(v, 0), 6) (hardtanh(0, 6)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Relu6<T>(T v) where T : IFloatingPointIeee754<T>
    {
        T six = T.CreateTruncating(6);
        return v <= T.Zero ? (T.IsNaN(v) ? v : T.Zero) : (v >= six ? six : v);
    }

    /// <summary>Eq. (act.4): ReLU6'(v) = 1 for 0 &lt; v &lt; 6, else 0: both boundaries give 0 (hardtanh_backward).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Relu6Grad<T>(T v) where T : IFloatingPointIeee754<T> =>
        v > T.Zero && v < T.CreateTruncating(6) ? T.One : T.Zero;

    /// <summary>Eq. (act.5): hard-sigmoid(v) = ReLU6(v + 3) / 6, evaluated literally (the sum v + 3 is rounded first).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T HardSigmoid<T>(T v) where T : IFloatingPointIeee754<T> =>
        Relu6(v + T.CreateTruncating(3)) / T.CreateTruncating(6);

    /// <summary>Eq. (act.6): hard-sigmoid'(v) = ReLU6'(fl(v + 3)) / 6: zero at exactly v = ±3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T HardSigmoidGrad<T>(T v) where T : IFloatingPointIeee754<T> =>
        Relu6Grad(v + T.CreateTruncating(3)) / T.CreateTruncating(6);

    /// <summary>Eq. (act.7): the authors' h_swish(v) = v · ReLU6(v + 3) / 6 (a composite, not nn.Hardswish).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T HSwish<T>(T v) where T : IFloatingPointIeee754<T> => v * HardSigmoid(v);

    /// <summary>
    /// Eq. (act.8): the composite's derivative by the product rule, h_sigmoid(v) + v · h_sigmoid'(v); at v = −3 it is 0 and
    /// at v = +3 it is 1, because ReLU6' is 0 at both boundaries of fl(v + 3).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T HSwishGrad<T>(T v) where T : IFloatingPointIeee754<T> => HardSigmoid(v) + v * HardSigmoidGrad(v);

    /// <summary>Eq. (act.9): tanh'(v) from the output t = tanh(v): 1 − t², as ATen's tanh_backward.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T TanhGradFromOutput<T>(T t) where T : IFloatingPointIeee754<T> => T.One - t * t;

    /// <summary>Eq. (act.10): |v|' = sign(v), with abs'(0) = 0 (PyTorch's sgn).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T AbsGrad<T>(T v) where T : IFloatingPointIeee754<T> =>
        v > T.Zero ? T.One : v < T.Zero ? -T.One : T.Zero;

    /// <summary>
    /// Eq. (act.11): <c>nn.Hardswish</c>, ATen's literal v · min(max(v + 3, 0), 6) / 6 (the product rounded before the
    /// division).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Hardswish<T>(T v) where T : IFloatingPointIeee754<T> =>
        v * Relu6(v + T.CreateTruncating(3)) / T.CreateTruncating(6);

    /// <summary>
    /// Eq. (act.12): <c>nn.Hardswish</c>'s backward as ATen writes it: 0 for v &lt; −3, v/3 + 1/2 for −3 ≤ v ≤ 3, 1 above;
    /// so −0.5 at exactly v = −3 and 1.5 at v = +3 (unlike the composite h_swish of Eq. (act.8)).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T HardswishGrad<T>(T v) where T : IFloatingPointIeee754<T>
    {
        T three = T.CreateTruncating(3);
        return v < -three ? T.Zero : v <= three ? v / three + T.CreateTruncating(0.5) : T.One;
    }

    /// <summary>Eq. (act.13): <c>nn.Hardsigmoid</c>, min(max(v + 3, 0), 6) / 6 (the same value as Eq. (act.5)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Hardsigmoid<T>(T v) where T : IFloatingPointIeee754<T> => HardSigmoid(v);

    /// <summary>
    /// Eq. (act.14): <c>nn.Hardsigmoid</c>'s derivative, 1/6 strictly inside (−3, 3) and 0 at and beyond ±3, with 1/6
    /// rounded once to <typeparamref name="T"/>. libtorch's CPU backward multiplies by <c>1.0f / 6.0f</c>, the
    /// float32-rounded 1/6 (0.16666667163…, 2.98e-8 relative too large), in float64 too: see
    /// <see cref="HardsigmoidGradLibtorch{T}"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T HardsigmoidGrad<T>(T v) where T : IFloatingPointIeee754<T>
    {
        T three = T.CreateTruncating(3);
        return v > -three && v < three ? T.One / T.CreateTruncating(6) : T.Zero;
    }

    /// <summary>
    /// Eq. (act.14) as libtorch (1.13 to 2.10) evaluates it: the float32 constant <c>1.0f / 6.0f</c> widened to
    /// <typeparamref name="T"/>. Used only under <c>GradConventions.Libtorch</c>, to reproduce PyTorch's numbers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T HardsigmoidGradLibtorch<T>(T v) where T : IFloatingPointIeee754<T>
    {
        T three = T.CreateTruncating(3);
        return v > -three && v < three ? T.CreateTruncating(1f / 6f) : T.Zero;
    }

    /// <summary>Eq. (act.15): <c>nn.SiLU</c>, ATen's literal v / (1 + exp(−v)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Silu<T>(T v) where T : IFloatingPointIeee754<T> => v / (T.One + T.Exp(-v));

    /// <summary>Eq. (act.16): SiLU'(v) as ATen's silu_backward: σ·(1 + v·(1 − σ)), σ = 1 / (1 + exp(−v)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T SiluGrad<T>(T v) where T : IFloatingPointIeee754<T>
    {
        T s = T.One / (T.One + T.Exp(-v));
        return s * (T.One + v * (T.One - s));
    }
}

/// <summary>
/// An elementwise function and its derivative, as an operator struct (the style of TensorPrimitives): the activation
/// layer (<c>Layers.Elementwise</c>) runs it, an inference plan's epilogue (<see cref="ActivationEpilogue{T, TOp}"/>) too. The derivative reads the saved input or the saved output, whichever
/// the formula needs (docs/derivations/pooling-and-activations.md).
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public interface IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>The class name PyTorch prints.</summary>
    static abstract string Kind { get; }

    /// <summary>True when the derivative is a function of the output (sigmoid, tanh), false when of the input.</summary>
    static abstract bool GradFromOutput { get; }

    /// <summary>f(v).</summary>
    static abstract T Invoke(T v);

    /// <summary>f'(·) at the saved input or output (see <see cref="GradFromOutput"/>).</summary>
    static abstract T Grad(T saved);

    /// <summary>f'(·) as libtorch evaluates it (the same as <see cref="Grad"/> except where docs/derivations says otherwise).</summary>
    static abstract T GradLibtorch(T saved);
}

/// <summary><c>nn.ReLU</c>: max(v, 0) with NaN propagated; relu'(0) = 0 as PyTorch.</summary>
public readonly struct ReluOp<T> : IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public static string Kind => "ReLU";
    /// <inheritdoc />
    public static bool GradFromOutput => false;
    /// <inheritdoc />
    public static T Invoke(T v) => Activations.Relu(v);
    /// <inheritdoc />
    public static T Grad(T v) => Activations.ReluGrad(v);
    /// <inheritdoc />
    public static T GradLibtorch(T v) => Grad(v);
}

/// <summary><c>nn.Sigmoid</c>: 1 / (1 + e^−v); derivative (1 − s)·s from the output s, as PyTorch's sigmoid_backward.</summary>
public readonly struct SigmoidOp<T> : IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public static string Kind => "Sigmoid";
    /// <inheritdoc />
    public static bool GradFromOutput => true;
    /// <inheritdoc />
    public static T Invoke(T v) => Activations.Sigmoid(v);
    /// <inheritdoc />
    public static T Grad(T s) => Activations.SigmoidGradFromOutput(s);
    /// <inheritdoc />
    public static T GradLibtorch(T s) => Grad(s);
}

/// <summary><c>nn.ReLU6</c>: min(max(v, 0), 6); derivative 0 at both boundaries (hardtanh_backward).</summary>
public readonly struct Relu6Op<T> : IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public static string Kind => "ReLU6";
    /// <inheritdoc />
    public static bool GradFromOutput => false;
    /// <inheritdoc />
    public static T Invoke(T v) => Activations.Relu6(v);
    /// <inheritdoc />
    public static T Grad(T v) => Activations.Relu6Grad(v);
    /// <inheritdoc />
    public static T GradLibtorch(T v) => Grad(v);
}

/// <summary><c>nn.Hardswish</c> (Eqs. (act.11)–(act.12)).</summary>
public readonly struct HardswishOp<T> : IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public static string Kind => "Hardswish";
    /// <inheritdoc />
    public static bool GradFromOutput => false;
    /// <inheritdoc />
    public static T Invoke(T v) => Activations.Hardswish(v);
    /// <inheritdoc />
    public static T Grad(T v) => Activations.HardswishGrad(v);
    /// <inheritdoc />
    public static T GradLibtorch(T v) => Grad(v);
}

/// <summary><c>nn.Hardsigmoid</c> (Eqs. (act.13)–(act.14)); the exact 1/6 in the backward.</summary>
public readonly struct HardsigmoidOp<T> : IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public static string Kind => "Hardsigmoid";
    /// <inheritdoc />
    public static bool GradFromOutput => false;
    /// <inheritdoc />
    public static T Invoke(T v) => Activations.Hardsigmoid(v);
    /// <inheritdoc />
    public static T Grad(T v) => Activations.HardsigmoidGrad(v);
    /// <inheritdoc />
    public static T GradLibtorch(T v) => Activations.HardsigmoidGradLibtorch(v);
}

/// <summary><c>nn.SiLU</c> (Eqs. (act.15)–(act.16)).</summary>
public readonly struct SiluOp<T> : IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public static string Kind => "SiLU";
    /// <inheritdoc />
    public static bool GradFromOutput => false;
    /// <inheritdoc />
    public static T Invoke(T v) => Activations.Silu(v);
    /// <inheritdoc />
    public static T Grad(T v) => Activations.SiluGrad(v);
    /// <inheritdoc />
    public static T GradLibtorch(T v) => Grad(v);
}

/// <summary>
/// timm's functional <c>hard_sigmoid</c>, ReLU6(v + 3) / 6 evaluated literally (Eq. (act.5)), with the derivative
/// ReLU6'(fl(v + 3)) / 6 (Eq. (act.6)): the SE paper module's hard gate. Its value is <c>nn.Hardsigmoid</c>'s; its
/// derivative is taken at the rounded v + 3, as the composite's autograd does.
/// </summary>
public readonly struct HardSigmoidOp<T> : IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public static string Kind => "hard_sigmoid";
    /// <inheritdoc />
    public static bool GradFromOutput => false;
    /// <inheritdoc />
    public static T Invoke(T v) => Activations.HardSigmoid(v);
    /// <inheritdoc />
    public static T Grad(T v) => Activations.HardSigmoidGrad(v);
    /// <inheritdoc />
    public static T GradLibtorch(T v) => Grad(v);
}

/// <summary><c>nn.Tanh</c>; derivative 1 − t² from the output (Eq. (act.9)).</summary>
public readonly struct TanhOp<T> : IElementwiseOp<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public static string Kind => "Tanh";
    /// <inheritdoc />
    public static bool GradFromOutput => true;
    /// <inheritdoc />
    public static T Invoke(T v) => T.Tanh(v);
    /// <inheritdoc />
    public static T Grad(T t) => Activations.TanhGradFromOutput(t);
    /// <inheritdoc />
    public static T GradLibtorch(T t) => Grad(t);
}

/// <summary>
/// An activation applied in place, as a convolution kernel's epilogue or over a whole tensor (inference plans):
/// values[i] ← f(values[i]) by <see cref="VectorActivations"/> where the function has a vector form, else by the
/// scalar formula. An operator object, not a layer: kernels call it and it calls nothing above the ops.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
/// <typeparam name="TOp">The function.</typeparam>
public sealed class ActivationEpilogue<T, TOp> : IConvEpilogue<T> where T : IFloatingPointIeee754<T> where TOp : struct, IElementwiseOp<T>
{
    private ActivationEpilogue() { }

    /// <summary>The one instance (it has no state).</summary>
    public static ActivationEpilogue<T, TOp> Instance { get; } = new();

    private static readonly VectorActivations.SpanMap<T>? s_vector = VectorActivations.Find<T>(TOp.Kind);

    /// <inheritdoc />
    public void Apply(Span<T> values)
    {
        if (s_vector is { } map) { map(values); return; }
        for (int i = 0; i < values.Length; i++) values[i] = TOp.Invoke(values[i]);
    }
}

/// <summary>Whole-tensor application of an epilogue.</summary>
public static class EpilogueExtensions
{
    /// <summary>x ← f(x) over all of <paramref name="x"/>, in parallel chunks (each element alone: any split gives the same bits).</summary>
    public static void ApplyInPlace<T>(this IConvEpilogue<T> op, DenseTensor<T> x) where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(op);
        ArgumentNullException.ThrowIfNull(x);
        Chunks.For(x.Data.Length, new ApplyChunk<T> { Op = op, X = x.Data });
    }

    private struct ApplyChunk<T> : Chunks.IBody where T : IFloatingPointIeee754<T>
    {
        public IConvEpilogue<T> Op;
        public T[] X;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int lo, int hi) => Op.Apply(X.AsSpan(lo, hi - lo));
    }
}
