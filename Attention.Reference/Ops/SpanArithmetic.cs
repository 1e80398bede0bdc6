using Attention.Reference.Kernels;

namespace Attention.Reference.Ops;

/// <summary>
/// Element-wise arithmetic over spans for the inference passes (SE's scale, the residual sum), on the
/// <see cref="ISimd{TSelf, T}"/> engine at <see cref="SimdWidth"/>'s width. Each element gets the scalar formula's
/// operations in its order (a multiply and an add are two roundings, never fused), so the result is the scalar loop's
/// bit for bit, whatever the vector width.
/// </summary>
internal static class SpanArithmetic
{
    /// <summary>h[i] ← h[i]·g + s[i] (multiply, round, add, round).</summary>
    public static void ScaleAdd<T>(Span<T> h, T g, ReadOnlySpan<T> s) where T : IFloatingPointIeee754<T>
    {
        if (s.Length < h.Length) throw new ArgumentException("the addend is shorter than the target", nameof(s));
        Run<T, ScaleAddOp>(h, s, g, T.Zero, h);
    }

    /// <summary>h[i] ← h[i] + s[i].</summary>
    public static void Add<T>(Span<T> h, ReadOnlySpan<T> s) where T : IFloatingPointIeee754<T>
    {
        if (s.Length < h.Length) throw new ArgumentException("the addend is shorter than the target", nameof(s));
        Run<T, AddOp>(h, s, T.One, T.Zero, h);
    }

    /// <summary>y[i] ← x[i]·g (<paramref name="y"/> may be <paramref name="x"/>).</summary>
    public static void Scale<T>(ReadOnlySpan<T> x, T g, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        if (y.Length < x.Length) throw new ArgumentException("the target is shorter than the source", nameof(y));
        Run<T, ScaleOp>(x, x, g, T.Zero, y);
    }

    /// <summary>y[i] ← x[i]·g + a (multiply, round, add, round; <paramref name="y"/> may be <paramref name="x"/>).</summary>
    public static void ScaleAddConstant<T>(ReadOnlySpan<T> x, T g, T a, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        if (y.Length < x.Length) throw new ArgumentException("the target is shorter than the source", nameof(y));
        Run<T, ScaleAddConstantOp>(x, x, g, a, y);
    }

    /// <summary>y[i] ← op(x[i], s[i], g, a) for i &lt; x.Length, on the engine for float and double.</summary>
    private static void Run<T, TOp>(ReadOnlySpan<T> x, ReadOnlySpan<T> s, T g, T a, Span<T> y)
        where T : IFloatingPointIeee754<T> where TOp : struct, IOp
    {
        if (typeof(T) == typeof(float)) Width<float, TOp>(Cast<T, float>(x), Cast<T, float>(s), float.CreateTruncating(g), float.CreateTruncating(a), Cast<T, float>(y));
        else if (typeof(T) == typeof(double)) Width<double, TOp>(Cast<T, double>(x), Cast<T, double>(s), double.CreateTruncating(g), double.CreateTruncating(a), Cast<T, double>(y));
        else for (int i = 0; i < x.Length; i++) y[i] = TOp.Scalar(x[i], s[i], g, a);
    }

    private static Span<TTo> Cast<TFrom, TTo>(ReadOnlySpan<TFrom> span) =>
        MemoryMarshal.CreateSpan(ref Unsafe.As<TFrom, TTo>(ref MemoryMarshal.GetReference(span)), span.Length);

    private static void Width<TF, TOp>(ReadOnlySpan<TF> x, ReadOnlySpan<TF> s, TF g, TF a, Span<TF> y)
        where TF : unmanaged, IFloatingPointIeee754<TF> where TOp : struct, IOp
    {
        switch (SimdWidth.Path)
        {
            case SimdPath.Vector512: Map<Simd512<TF>, TF, TOp>(x, s, g, a, y); break;
            case SimdPath.Vector256: Map<Simd256<TF>, TF, TOp>(x, s, g, a, y); break;
            default: Map<SimdPortable<TF>, TF, TOp>(x, s, g, a, y); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Map<TV, TF, TOp>(ReadOnlySpan<TF> x, ReadOnlySpan<TF> s, TF g, TF a, Span<TF> y)
        where TV : unmanaged, ISimd<TV, TF> where TF : unmanaged, IFloatingPointIeee754<TF> where TOp : struct, IOp
    {
        int i = 0, n = TV.Count;
        ref TF xr = ref MemoryMarshal.GetReference(x);
        ref TF sr = ref MemoryMarshal.GetReference(s);
        ref TF yr = ref MemoryMarshal.GetReference(y);
        TV vg = TV.Splat(g), va = TV.Splat(a);
        for (; i + n <= x.Length; i += n)
            TV.Store(TOp.Invoke<TV, TF>(TV.Load(ref xr, (nuint)i), TV.Load(ref sr, (nuint)i), vg, va), ref yr, (nuint)i);
        for (; i < x.Length; i++) y[i] = TOp.Scalar(x[i], s[i], g, a);
    }

    /// <summary>One element's formula, as a register and as a scalar (the same operations in the same order).</summary>
    private interface IOp
    {
        static abstract TV Invoke<TV, TF>(TV x, TV s, TV g, TV a) where TV : unmanaged, ISimd<TV, TF> where TF : unmanaged, IFloatingPointIeee754<TF>;

        static abstract T Scalar<T>(T x, T s, T g, T a) where T : IFloatingPointIeee754<T>;
    }

    private readonly struct ScaleAddOp : IOp
    {
        public static TV Invoke<TV, TF>(TV x, TV s, TV g, TV a) where TV : unmanaged, ISimd<TV, TF> where TF : unmanaged, IFloatingPointIeee754<TF> =>
            TV.Add(TV.Multiply(x, g), s);

        public static T Scalar<T>(T x, T s, T g, T a) where T : IFloatingPointIeee754<T> => x * g + s;
    }

    private readonly struct AddOp : IOp
    {
        public static TV Invoke<TV, TF>(TV x, TV s, TV g, TV a) where TV : unmanaged, ISimd<TV, TF> where TF : unmanaged, IFloatingPointIeee754<TF> =>
            TV.Add(x, s);

        public static T Scalar<T>(T x, T s, T g, T a) where T : IFloatingPointIeee754<T> => x + s;
    }

    private readonly struct ScaleOp : IOp
    {
        public static TV Invoke<TV, TF>(TV x, TV s, TV g, TV a) where TV : unmanaged, ISimd<TV, TF> where TF : unmanaged, IFloatingPointIeee754<TF> =>
            TV.Multiply(x, g);

        public static T Scalar<T>(T x, T s, T g, T a) where T : IFloatingPointIeee754<T> => x * g;
    }

    private readonly struct ScaleAddConstantOp : IOp
    {
        public static TV Invoke<TV, TF>(TV x, TV s, TV g, TV a) where TV : unmanaged, ISimd<TV, TF> where TF : unmanaged, IFloatingPointIeee754<TF> =>
            TV.Add(TV.Multiply(x, g), a);

        public static T Scalar<T>(T x, T s, T g, T a) where T : IFloatingPointIeee754<T> => x * g + a;
    }
}
