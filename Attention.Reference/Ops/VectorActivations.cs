using Attention.Reference.Kernels;

namespace Attention.Reference.Ops;

/// <summary>
/// In-place activations over spans on the <see cref="ISimd{TSelf, T}"/> engine (the vector width is
/// <see cref="SimdWidth"/>'s, the one dispatch point), for inference epilogues. Every lane is computed alone and the
/// tail runs in a register too, so the result never depends on the vector width, the chunking or the thread count.
/// ReLU, ReLU6, Hardswish and Hardsigmoid evaluate exactly the scalar formulas of <see cref="Activations"/> (NaN kept):
/// the same bits. Sigmoid 1/(1 + e^−v) and SiLU v/(1 + e^−v) (float32 only) evaluate the scalar formulas' operations
/// with a vectorised e^t (<see cref="Exp{TV, TF}"/>): within a few ulp of the correctly rounded values (the tests give the
/// bound), not bitwise the scalar <see cref="MathF.Exp"/>.
/// </summary>
public static class VectorActivations
{
    /// <summary>values[i] ← f(values[i]) over a span.</summary>
    /// <typeparam name="T">float or double.</typeparam>
    public delegate void SpanMap<T>(Span<T> values);

    /// <summary>Applies the activation named as <c>IElementwiseOp.Kind</c> in place; false if it has no vector form.</summary>
    public static bool TryApply<T>(string kind, Span<T> values) where T : IFloatingPointIeee754<T>
    {
        if (Find<T>(kind) is not { } map) return false;
        map(values);
        return true;
    }

    /// <summary>
    /// The vector form of the activation named <paramref name="kind"/> (<c>IElementwiseOp.Kind</c>) for
    /// <typeparamref name="T"/>, or null: resolved once by an epilogue, so that its calls on short row segments do not
    /// look the name up again.
    /// </summary>
    public static SpanMap<T>? Find<T>(string kind) where T : IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float)) return (SpanMap<T>?)(object?)Find<float>(kind, exp: true);
        if (typeof(T) == typeof(double)) return (SpanMap<T>?)(object?)Find<double>(kind, exp: false);
        return null;
    }

    private static SpanMap<TF>? Find<TF>(string kind, bool exp) where TF : unmanaged, IFloatingPointIeee754<TF> => kind switch
    {
        "ReLU" => Width<TF, ReluMap>,
        "ReLU6" => Width<TF, Relu6Map>,
        "Hardswish" => Width<TF, HardswishMap>,
        "Hardsigmoid" => Width<TF, HardsigmoidMap>,
        "Sigmoid" when exp => Width<TF, SigmoidMap>,
        "SiLU" when exp => Width<TF, SiluMap>,
        _ => null,
    };

    private static void Width<TF, TMap>(Span<TF> values) where TF : unmanaged, IFloatingPointIeee754<TF> where TMap : struct, IMap
    {
        switch (SimdWidth.Path)
        {
            case SimdPath.Vector512: Map<Simd512<TF>, TF, TMap>(values); break;
            case SimdPath.Vector256: Map<Simd256<TF>, TF, TMap>(values); break;
            default: Map<SimdPortable<TF>, TF, TMap>(values); break;
        }
    }

    /// <summary>values[i] ← f(values[i]) a register at a time; the tail through a register-sized buffer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Map<TV, TF, TMap>(Span<TF> values)
        where TV : unmanaged, ISimd<TV, TF> where TF : unmanaged, IFloatingPointIeee754<TF> where TMap : struct, IMap
    {
        int n = TV.Count, i = 0;
        ref TF v0 = ref MemoryMarshal.GetReference(values);
        for (; i + n <= values.Length; i += n) TV.Store(TMap.Invoke<TV, TF>(TV.Load(ref v0, (nuint)i)), ref v0, (nuint)i);
        if (i == values.Length) return;
        Span<TF> tail = stackalloc TF[n];
        tail.Clear();
        values[i..].CopyTo(tail);
        ref TF t0 = ref MemoryMarshal.GetReference(tail);
        TV.Store(TMap.Invoke<TV, TF>(TV.Load(ref t0, 0)), ref t0, 0);
        tail[..(values.Length - i)].CopyTo(values[i..]);
    }

    /// <summary>An activation as a function of one register.</summary>
    private interface IMap
    {
        static abstract TV Invoke<TV, TF>(TV v) where TV : unmanaged, ISimd<TV, TF> where TF : unmanaged, IFloatingPointIeee754<TF>;
    }

    private static TV C<TV, TF>(double c) where TV : unmanaged, ISimd<TV, TF> where TF : unmanaged, IFloatingPointIeee754<TF> =>
        TV.Splat(TF.CreateTruncating(c));

    /// <summary>Activations.Relu: v ≤ 0 → 0, NaN kept.</summary>
    private readonly struct ReluMap : IMap
    {
        public static TV Invoke<TV, TF>(TV v) where TV : unmanaged, ISimd<TV, TF> where TF : unmanaged, IFloatingPointIeee754<TF> =>
            TV.Clamp(v, TV.Zero, C<TV, TF>(double.PositiveInfinity));
    }

    /// <summary>Activations.Relu6.</summary>
    private readonly struct Relu6Map : IMap
    {
        public static TV Invoke<TV, TF>(TV v) where TV : unmanaged, ISimd<TV, TF> where TF : unmanaged, IFloatingPointIeee754<TF> =>
            TV.Clamp(v, TV.Zero, C<TV, TF>(6));
    }

    /// <summary>Activations.HardSigmoid: relu6(v + 3) / 6.</summary>
    private readonly struct HardsigmoidMap : IMap
    {
        public static TV Invoke<TV, TF>(TV v) where TV : unmanaged, ISimd<TV, TF> where TF : unmanaged, IFloatingPointIeee754<TF> =>
            TV.Divide(TV.Clamp(TV.Add(v, C<TV, TF>(3)), TV.Zero, C<TV, TF>(6)), C<TV, TF>(6));
    }

    /// <summary>Activations.Hardswish: v·relu6(v + 3) / 6.</summary>
    private readonly struct HardswishMap : IMap
    {
        public static TV Invoke<TV, TF>(TV v) where TV : unmanaged, ISimd<TV, TF> where TF : unmanaged, IFloatingPointIeee754<TF> =>
            TV.Divide(TV.Multiply(v, TV.Clamp(TV.Add(v, C<TV, TF>(3)), TV.Zero, C<TV, TF>(6))), C<TV, TF>(6));
    }

    /// <summary>σ(v) = 1 / (1 + e^−v).</summary>
    private readonly struct SigmoidMap : IMap
    {
        public static TV Invoke<TV, TF>(TV v) where TV : unmanaged, ISimd<TV, TF> where TF : unmanaged, IFloatingPointIeee754<TF> =>
            TV.Divide(C<TV, TF>(1), TV.Add(C<TV, TF>(1), Exp<TV, TF>(TV.Subtract(TV.Zero, v))));
    }

    /// <summary>SiLU v / (1 + e^−v), as Activations.Silu writes it.</summary>
    private readonly struct SiluMap : IMap
    {
        public static TV Invoke<TV, TF>(TV v) where TV : unmanaged, ISimd<TV, TF> where TF : unmanaged, IFloatingPointIeee754<TF> =>
            TV.Divide(v, TV.Add(C<TV, TF>(1), Exp<TV, TF>(TV.Subtract(TV.Zero, v))));
    }

    /// <summary>
    /// e^t for float lanes (Cephes' expf): t clamped to [−86.6, 88.73] (NaN kept); n = round(t·log₂e) (ties to even);
    /// r = t − n·ln 2 in two steps (Cody–Waite: 0.693359375 is exact in a few bits, then −2.12194440e−4);
    /// e^r ≈ 1 + r + r²·P(r) with Cephes' degree-5 P by FMAs; times 2^n built in the exponent bits. Like a float exp it
    /// overflows to +∞ above ln(FLT_MAX) ≈ 88.7228; below −86.6 it gives e^−86.6 ≈ 2.4e−38 instead of a smaller value,
    /// which vanishes against the 1 of 1 + e^t exactly as the true value does. Every operation is lane-wise and correctly
    /// rounded, so the bits do not depend on the width.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TV Exp<TV, TF>(TV t) where TV : unmanaged, ISimd<TV, TF> where TF : unmanaged, IFloatingPointIeee754<TF>
    {
        t = TV.Clamp(t, C<TV, TF>(-86.6), C<TV, TF>(88.73));
        var n = TV.RoundToEven(TV.Multiply(t, C<TV, TF>(1.44269504088896341)));
        var r = TV.FusedMultiplyAdd(n, C<TV, TF>(-0.693359375), t);
        r = TV.FusedMultiplyAdd(n, C<TV, TF>(2.12194440e-4), r);
        var p = TV.FusedMultiplyAdd(C<TV, TF>(1.9875691500e-4), r, C<TV, TF>(1.3981999507e-3));
        p = TV.FusedMultiplyAdd(p, r, C<TV, TF>(8.3334519073e-3));
        p = TV.FusedMultiplyAdd(p, r, C<TV, TF>(4.1665795894e-2));
        p = TV.FusedMultiplyAdd(p, r, C<TV, TF>(1.6666665459e-1));
        p = TV.FusedMultiplyAdd(p, r, C<TV, TF>(5.0000001201e-1));
        var y = TV.Add(TV.FusedMultiplyAdd(p, TV.Multiply(r, r), r), C<TV, TF>(1));
        // (y + y)·2^(n−1), both factors exact and normal for n in [−125, 128]: the product overflows to +∞ exactly where
        // e^t exceeds the largest float.
        return TV.Multiply(TV.Add(y, y), TV.Pow2(TV.Subtract(n, C<TV, TF>(1))));
    }
}
