using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Attention.Reference.Ops;

/// <summary>
/// Element-wise arithmetic over spans for the inference passes (SE's scale, the residual sum), lane by lane with
/// <see cref="Vector{T}"/>. Each element gets the scalar formula's operations in its order (a multiply and an add are
/// two roundings, never fused), so the result is the scalar loop's bit for bit, whatever the vector width.
/// </summary>
internal static class SpanArithmetic
{
    /// <summary>h[i] ← h[i]·g + s[i] (multiply, round, add, round).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ScaleAdd<T>(Span<T> h, T g, ReadOnlySpan<T> s) where T : IFloatingPointIeee754<T>
    {
        if (s.Length < h.Length) throw new ArgumentException("the addend is shorter than the target", nameof(s));
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            ref T hr = ref MemoryMarshal.GetReference(h);
            ref T sr = ref MemoryMarshal.GetReference(s);
            var vg = new Vector<T>(g);
            for (; i + Vector<T>.Count <= h.Length; i += Vector<T>.Count)
            {
                var prod = Vector.LoadUnsafe(ref hr, (nuint)i) * vg;
                (prod + Vector.LoadUnsafe(ref sr, (nuint)i)).StoreUnsafe(ref hr, (nuint)i);
            }
        }
        for (; i < h.Length; i++) h[i] = h[i] * g + s[i];
    }

    /// <summary>h[i] ← h[i] + s[i].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Add<T>(Span<T> h, ReadOnlySpan<T> s) where T : IFloatingPointIeee754<T>
    {
        if (s.Length < h.Length) throw new ArgumentException("the addend is shorter than the target", nameof(s));
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            ref T hr = ref MemoryMarshal.GetReference(h);
            ref T sr = ref MemoryMarshal.GetReference(s);
            for (; i + Vector<T>.Count <= h.Length; i += Vector<T>.Count)
                (Vector.LoadUnsafe(ref hr, (nuint)i) + Vector.LoadUnsafe(ref sr, (nuint)i)).StoreUnsafe(ref hr, (nuint)i);
        }
        for (; i < h.Length; i++) h[i] += s[i];
    }

    /// <summary>y[i] ← x[i]·g (<paramref name="y"/> may be <paramref name="x"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scale<T>(ReadOnlySpan<T> x, T g, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        if (y.Length < x.Length) throw new ArgumentException("the target is shorter than the source", nameof(y));
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            ref T xr = ref MemoryMarshal.GetReference(x);
            ref T yr = ref MemoryMarshal.GetReference(y);
            var vg = new Vector<T>(g);
            for (; i + Vector<T>.Count <= x.Length; i += Vector<T>.Count)
                (Vector.LoadUnsafe(ref xr, (nuint)i) * vg).StoreUnsafe(ref yr, (nuint)i);
        }
        for (; i < x.Length; i++) y[i] = x[i] * g;
    }

    /// <summary>y[i] ← x[i]·g + a (multiply, round, add, round; <paramref name="y"/> may be <paramref name="x"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ScaleAddConstant<T>(ReadOnlySpan<T> x, T g, T a, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        if (y.Length < x.Length) throw new ArgumentException("the target is shorter than the source", nameof(y));
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            ref T xr = ref MemoryMarshal.GetReference(x);
            ref T yr = ref MemoryMarshal.GetReference(y);
            var vg = new Vector<T>(g);
            var va = new Vector<T>(a);
            for (; i + Vector<T>.Count <= x.Length; i += Vector<T>.Count)
            {
                var prod = Vector.LoadUnsafe(ref xr, (nuint)i) * vg;
                (prod + va).StoreUnsafe(ref yr, (nuint)i);
            }
        }
        for (; i < x.Length; i++) y[i] = x[i] * g + a;
    }
}
