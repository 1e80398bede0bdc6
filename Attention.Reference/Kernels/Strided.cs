using System.Runtime.Intrinsics.X86;

namespace Attention.Reference.Kernels;

/// <summary>
/// Strided copies (the stride phases of a convolution): pure data movement, so every path gives the same bits.
/// Stride 2 in float, the common case (MobileNet's strided depthwise layers), treats each pair of floats as one
/// 64-bit lane: the even elements are the lanes' low halves (<see cref="Vector.Narrow(Vector{ulong}, Vector{ulong})"/>
/// gathers them; widening and a mask put them back); where AVX-512 is present a stride-2 float gather takes 16 even
/// elements of 32 with one two-register permute.
/// </summary>
internal static class Strided
{
    private static bool PairLanes<T>() =>
        typeof(T) == typeof(float) && BitConverter.IsLittleEndian && Vector.IsHardwareAccelerated;

    /// <summary>
    /// dst[i] = src[i] for i &lt; n, for the short rows of a padded plane: whole vectors and one last vector that
    /// overlaps the previous (it rewrites the same values), inline, without a call per row. The caller checks bounds.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void CopyShort<T>(ref T src, ref T dst, int n) where T : unmanaged
    {
        int vc = Vector<T>.Count;
        if (!Vector.IsHardwareAccelerated || n < vc)
        {
            for (int i = 0; i < n; i++) Unsafe.Add(ref dst, i) = Unsafe.Add(ref src, i);
            return;
        }
        int j = 0;
        for (; j + vc <= n; j += vc) Vector.LoadUnsafe(ref src, (nuint)j).StoreUnsafe(ref dst, (nuint)j);
        if (j < n) Vector.LoadUnsafe(ref src, (nuint)(n - vc)).StoreUnsafe(ref dst, (nuint)(n - vc));
    }

    /// <summary>
    /// even[i] = src[start + 2i] and odd[i] = src[start + 2i + 1] (i below each destination's length): both stride-2
    /// phases of a row in one pass over it (AVX-512 float: 16 of each from 32 consecutive elements by two permutes).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Deinterleave<T>(ReadOnlySpan<T> src, int start, Span<T> even, Span<T> odd) where T : unmanaged
    {
        int ne = even.Length, no = odd.Length;
        if (start < 0 || (ne > 0 && (long)start + 2L * (ne - 1) >= src.Length) || (no > 0 && (long)start + 2L * no > src.Length))
            throw new ArgumentOutOfRangeException(nameof(start), "deinterleave out of range");
        int i = 0;
        if (typeof(T) == typeof(float) && SimdWidth.Avx512Forms)
        {
            ref float sf = ref Unsafe.Add(ref Unsafe.As<T, float>(ref MemoryMarshal.GetReference(src)), start);
            ref float ef = ref Unsafe.As<T, float>(ref MemoryMarshal.GetReference(even));
            ref float of = ref Unsafe.As<T, float>(ref MemoryMarshal.GetReference(odd));
            var evens = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            var odds = evens + Vector512<int>.One;
            for (; i + 16 <= Math.Min(ne, no) && start + 2L * i + 32 <= src.Length; i += 16)
            {
                var lo = Vector512.LoadUnsafe(ref sf, (nuint)(2 * i));
                var hi = Vector512.LoadUnsafe(ref sf, (nuint)(2 * i + 16));
                Avx512F.PermuteVar16x32x2(lo, evens, hi).StoreUnsafe(ref ef, (nuint)i);
                Avx512F.PermuteVar16x32x2(lo, odds, hi).StoreUnsafe(ref of, (nuint)i);
            }
        }
        ref T s = ref Unsafe.Add(ref MemoryMarshal.GetReference(src), start);
        for (int j = i; j < ne; j++) even[j] = Unsafe.Add(ref s, 2 * j);
        for (int j = i; j < no; j++) odd[j] = Unsafe.Add(ref s, 2 * j + 1);
    }

    /// <summary>
    /// dst[start + 2i] += src[i] for i &lt; src.Length (col2im of a stride-2 convolution): each sum rounded once, as the
    /// scalar loop does (AVX-512 float: 16 at a time, the values spread to the even lanes and the odd lanes kept by a
    /// mask).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void AddStride2<T>(ReadOnlySpan<T> src, Span<T> dst, int start) where T : unmanaged, INumberBase<T>
    {
        int n = src.Length;
        if (n == 0) return;
        if (start < 0 || (long)start + 2L * (n - 1) >= dst.Length)
            throw new ArgumentOutOfRangeException(nameof(start), "strided add out of range");
        int i = 0;
        if (typeof(T) == typeof(float) && SimdWidth.Avx512Forms)
        {
            ref float sf = ref Unsafe.As<T, float>(ref MemoryMarshal.GetReference(src));
            ref float df = ref Unsafe.Add(ref Unsafe.As<T, float>(ref MemoryMarshal.GetReference(dst)), start);
            var low = Vector512.Create(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
            var high = low + Vector512.Create(8);
            var even = Vector512.Create(-1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0).AsSingle();
            for (; i + 16 <= n && start + 2L * i + 32 <= dst.Length; i += 16)
            {
                var v = Vector512.LoadUnsafe(ref sf, (nuint)i);
                var d0 = Vector512.LoadUnsafe(ref df, (nuint)(2 * i));
                var d1 = Vector512.LoadUnsafe(ref df, (nuint)(2 * i + 16));
                Vector512.ConditionalSelect(even, d0 + Avx512F.PermuteVar16x32(v, low), d0).StoreUnsafe(ref df, (nuint)(2 * i));
                Vector512.ConditionalSelect(even, d1 + Avx512F.PermuteVar16x32(v, high), d1).StoreUnsafe(ref df, (nuint)(2 * i + 16));
            }
        }
        for (; i < n; i++) dst[start + 2 * i] += src[i];
    }

    /// <summary>dst[i] = src[start + i·stride] for i &lt; dst.Length.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Gather<T>(ReadOnlySpan<T> src, int start, int stride, Span<T> dst) where T : unmanaged
    {
        int n = dst.Length;
        if (n == 0) return;
        if ((long)start + (long)(n - 1) * stride >= src.Length || start < 0 || stride < 1)
            throw new ArgumentOutOfRangeException(nameof(start), "strided gather out of range");
        if (stride == 1)
        {
            src.Slice(start, n).CopyTo(dst);
            return;
        }
        int i = 0;
        if (stride == 2 && typeof(T) == typeof(float) && SimdWidth.Avx512Forms)
        {
            // 16 even elements of 32 consecutive ones by one two-register permute (where all 32 are in range).
            ref float sf = ref Unsafe.As<T, float>(ref MemoryMarshal.GetReference(src));
            ref float df = ref Unsafe.As<T, float>(ref MemoryMarshal.GetReference(dst));
            var evens = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            for (; i + 16 <= n && start + 2L * i + 32 <= src.Length; i += 16)
            {
                var lo = Vector512.LoadUnsafe(ref sf, (nuint)(start + 2 * i));
                var hi = Vector512.LoadUnsafe(ref sf, (nuint)(start + 2 * i + 16));
                Avx512F.PermuteVar16x32x2(lo, evens, hi).StoreUnsafe(ref df, (nuint)i);
            }
        }
        if (stride == 2 && PairLanes<T>())
        {
            int cnt = Vector<uint>.Count;
            // Pairs (src[start + 2j], src[start + 2j + 1]) as ulong: needs the odd partner in range too.
            int full = Math.Min(n, (src.Length - start) / 2);
            var pairs = MemoryMarshal.Cast<T, ulong>(src.Slice(start, 2 * full));
            var outU = MemoryMarshal.Cast<T, uint>(dst);
            for (; i + cnt <= full; i += cnt)
            {
                var a = new Vector<ulong>(pairs.Slice(i, cnt / 2));
                var b = new Vector<ulong>(pairs.Slice(i + cnt / 2, cnt / 2));
                Vector.Narrow(a, b).CopyTo(outU.Slice(i, cnt));
            }
        }
        ref T s = ref MemoryMarshal.GetReference(src);
        ref T d = ref MemoryMarshal.GetReference(dst);
        for (; i < n; i++) Unsafe.Add(ref d, i) = Unsafe.Add(ref s, start + i * stride);
    }

    /// <summary>dst[start + i·stride] = src[i] for i &lt; src.Length; the elements between are left as they are.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scatter<T>(ReadOnlySpan<T> src, Span<T> dst, int start, int stride) where T : unmanaged
    {
        int n = src.Length;
        if (n == 0) return;
        if ((long)start + (long)(n - 1) * stride >= dst.Length || start < 0 || stride < 1)
            throw new ArgumentOutOfRangeException(nameof(start), "strided scatter out of range");
        if (stride == 1)
        {
            src.CopyTo(dst.Slice(start, n));
            return;
        }
        int i = 0;
        if (stride == 2 && PairLanes<T>())
        {
            int cnt = Vector<uint>.Count;
            int full = Math.Min(n, (dst.Length - start) / 2);
            var pairs = MemoryMarshal.Cast<T, ulong>(dst.Slice(start, 2 * full));
            var inU = MemoryMarshal.Cast<T, uint>(src);
            var keep = new Vector<ulong>(0xFFFF_FFFF_0000_0000UL);
            for (; i + cnt <= full; i += cnt)
            {
                Vector.Widen(new Vector<uint>(inU.Slice(i, cnt)), out var lo, out var hi);
                var p0 = pairs.Slice(i, cnt / 2);
                var p1 = pairs.Slice(i + cnt / 2, cnt / 2);
                ((new Vector<ulong>(p0) & keep) | lo).CopyTo(p0);
                ((new Vector<ulong>(p1) & keep) | hi).CopyTo(p1);
            }
        }
        ref T s = ref MemoryMarshal.GetReference(src);
        ref T d = ref MemoryMarshal.GetReference(dst);
        for (; i < n; i++) Unsafe.Add(ref d, start + i * stride) = Unsafe.Add(ref s, i);
    }
}
