using System.Numerics;
using System.Runtime.CompilerServices;

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
