using System.Runtime.Intrinsics.X86;

namespace Attention.Reference.Kernels;

/// <summary>
/// The term a plane reduction adds up, as an operator struct (TensorPrimitives' style): a scalar form and a
/// Vector512 float form that computes the same rounded value lane by lane.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
internal interface IPlaneTerm<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>The term for the elements a (second input, when the reduction has one) and b.</summary>
    static abstract T Invoke(T a, T b);

    /// <summary>The same per lane, for float.</summary>
    static abstract Vector512<float> Invoke(Vector512<float> a, Vector512<float> b);

    /// <summary>The same per lane, for float on 256-bit registers.</summary>
    static abstract Vector256<float> Invoke256(Vector256<float> a, Vector256<float> b);

    /// <summary>Whether the term reads a (false: the reduction has one input, b).</summary>
    static abstract bool TwoInputs { get; }
}

/// <summary>b: Σ x (SE's squeeze, Eq. (se.1); GCT's after-ReLU l1 embedding, Eq. (gct.4)).</summary>
internal readonly struct ValueTerm<T> : IPlaneTerm<T> where T : IFloatingPointIeee754<T>
{
    public static bool TwoInputs => false;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T Invoke(T a, T b) => b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Invoke(Vector512<float> a, Vector512<float> b) => b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Invoke256(Vector256<float> a, Vector256<float> b) => b;
}

/// <summary>b·b, rounded: Σ x² (GCT's l2 embedding, Eq. (gct.1)).</summary>
internal readonly struct SquareTerm<T> : IPlaneTerm<T> where T : IFloatingPointIeee754<T>
{
    public static bool TwoInputs => false;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T Invoke(T a, T b) => b * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Invoke(Vector512<float> a, Vector512<float> b) => b * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Invoke256(Vector256<float> a, Vector256<float> b) => b * b;
}

/// <summary>|b|: Σ |x| (GCT's l1 embedding, Eq. (gct.4)).</summary>
internal readonly struct AbsTerm<T> : IPlaneTerm<T> where T : IFloatingPointIeee754<T>
{
    public static bool TwoInputs => false;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T Invoke(T a, T b) => T.Abs(b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Invoke(Vector512<float> a, Vector512<float> b) => Vector512.Abs(b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Invoke256(Vector256<float> a, Vector256<float> b) => Vector256.Abs(b);
}

/// <summary>a·b, rounded: Σ ∂y·x (SE's Eq. (se.8), GCT's Eq. (gct.10)).</summary>
internal readonly struct ProductTerm<T> : IPlaneTerm<T> where T : IFloatingPointIeee754<T>
{
    public static bool TwoInputs => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T Invoke(T a, T b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Invoke(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Invoke256(Vector256<float> a, Vector256<float> b) => a * b;
}

/// <summary>
/// The order of a plane reduction's additions: the oracle's sequential chain, or the fast kernels' blocked partial sums
/// (<see cref="PlaneReduce.Sums{TTerm, T}(T[], T[], int, int, int, T[], SumOrder)"/>). Both are fixed: the same bits
/// for any thread count and vector width.
/// </summary>
public enum SumOrder
{
    /// <summary>One chain per plane in increasing position order from +0 (the plain loop; the float64 oracle's).</summary>
    Sequential,

    /// <summary>64 interleaved partial sums, a fixed tree, then the tail (float32 on the fast path).</summary>
    Blocked,
}

/// <summary>
/// The one engine for per-plane reductions of NCHW tensors: sums[p] = Σ_i term(a[p·P + i], b[p·P + i]) for every plane
/// p (P = H·W), each one sequential chain from +0 in increasing index (h outer, w inner), every term rounded before it
/// is added — the plain loop of <see cref="SumsSpec{TTerm, T}"/>, whose bits it gives on every path and for any thread
/// count. The speed comes from running independent chains side by side: sixteen float planes in the lanes of one
/// Vector512 (a 16 × 16 block of terms transposed in registers, its columns added in position order), eight in one
/// Vector256 on AVX2, or elsewhere eight scalar chains at once to hide the add latency. The path is <see cref="SimdWidth.Path"/>'s, read once.
/// </summary>
internal static class PlaneReduce
{
    /// <summary>
    /// Fills <paramref name="sums"/> (one value per plane) from b and a (for a one-input term, pass b as a too).
    /// </summary>
    public static void Sums<TTerm, T>(T[] a, T[] b, int planes, int plane, T[] sums)
        where TTerm : struct, IPlaneTerm<T> where T : IFloatingPointIeee754<T> => Sums<TTerm, T>(a, b, 0, planes, plane, sums);

    /// <summary>
    /// The same for planes [<paramref name="first"/>, <paramref name="first"/> + <paramref name="planes"/>) only
    /// (<paramref name="sums"/> indexed by plane, like the data): one sample of a batch, while its planes are in cache.
    /// </summary>
    public static void Sums<TTerm, T>(T[] a, T[] b, int first, int planes, int plane, T[] sums)
        where TTerm : struct, IPlaneTerm<T> where T : IFloatingPointIeee754<T>
    {
        long end = checked((long)(first + planes) * plane);
        if (first < 0 || planes < 0 || b.Length < end || (TTerm.TwoInputs && a.Length < end) || sums.Length < first + planes)
            throw new ArgumentException($"plane reduction: planes {first}..{first + planes} of {plane} need {end} values.");
        long work = (long)planes * plane;
        if (typeof(T) == typeof(float) && planes % 16 == 0 && plane >= 1 && SimdWidth.Path == SimdPath.Vector512
            && SimdWidth.Avx512Forms)
            Compute.ForWork(planes / 16, new Sixteen<TTerm, T> { A = a, B = b, Sums = sums, Plane = plane, First = first }, work);
        else if (typeof(T) == typeof(float) && planes % 8 == 0 && plane >= 8 && SimdWidth.Path != SimdPath.Portable
                 && System.Runtime.Intrinsics.X86.Avx.IsSupported)
            Compute.ForWork(planes / 8, new Eight256<TTerm, T> { A = a, B = b, Sums = sums, Plane = plane, First = first }, work);
        else
            Compute.ForWork((planes + Eight<TTerm, T>.Group - 1) / Eight<TTerm, T>.Group,
                new Eight<TTerm, T> { A = a, B = b, Sums = sums, Plane = plane, Planes = planes, First = first }, work);
    }

    /// <summary>
    /// The same sums in the fast kernels' order, <see cref="SumOrder.Blocked"/> (float only; double and planes of fewer
    /// than 64 values keep the sequential chain, which for a short plane is the same order): each plane's terms go into
    /// 64 partial sums, partial j taking positions i ≡ j (mod 64) of the whole 64-blocks in increasing order from +0;
    /// then u_j = (q_j + q_{j+16}) + (q_{j+32} + q_{j+48}) for j &lt; 16, halved by the tree u_j + u_{j+8}, then
    /// + _{j+4}, + _{j+2}, + _{j+1}; then the tail positions added one by one. Four Vector512 accumulators, eight
    /// Vector256 or a scalar loop compute the same operations, so the bits do not depend on the vector width or on the
    /// thread count; no transposes, so a plane costs about one vector add per 16 terms.
    /// </summary>
    public static void Sums<TTerm, T>(T[] a, T[] b, int first, int planes, int plane, T[] sums, SumOrder order)
        where TTerm : struct, IPlaneTerm<T> where T : IFloatingPointIeee754<T>
    {
        if (order == SumOrder.Sequential || typeof(T) != typeof(float) || plane < Blocked<TTerm, T>.Partials)
        {
            Sums<TTerm, T>(a, b, first, planes, plane, sums);
            return;
        }
        long end = checked((long)(first + planes) * plane);
        if (first < 0 || planes < 0 || b.Length < end || (TTerm.TwoInputs && a.Length < end) || sums.Length < first + planes)
            throw new ArgumentException($"plane reduction: planes {first}..{first + planes} of {plane} need {end} values.");
        Compute.ForWork(planes, new Blocked<TTerm, T> { A = a, B = b, Sums = sums, Plane = plane, First = first }, (long)planes * plane);
    }

    /// <summary>The specification: the plain loop, one plane after another.</summary>
    public static T[] SumsSpec<TTerm, T>(T[] a, T[] b, int planes, int plane)
        where TTerm : struct, IPlaneTerm<T> where T : IFloatingPointIeee754<T>
    {
        var sums = new T[planes];
        for (int p = 0; p < planes; p++)
        {
            T sum = T.Zero;
            for (int i = 0; i < plane; i++) sum += TTerm.Invoke(a[p * plane + i], b[p * plane + i]);
            sums[p] = sum;
        }
        return sums;
    }

    /// <summary>The specification of <see cref="SumOrder.Blocked"/> for float: the plain loops, one plane after another.</summary>
    public static float[] BlockedSpec<TTerm>(float[] a, float[] b, int planes, int plane) where TTerm : struct, IPlaneTerm<float>
    {
        if (plane < 64) return SumsSpec<TTerm, float>(a, b, planes, plane);
        var sums = new float[planes];
        var q = new float[64];
        for (int p = 0; p < planes; p++)
        {
            int o = p * plane, whole = plane - plane % 64;
            Array.Clear(q);
            for (int i = 0; i < whole; i++) q[i % 64] += TTerm.Invoke(a[o + i], b[o + i]);
            var u = new float[16];
            for (int j = 0; j < 16; j++) u[j] = (q[j] + q[j + 16]) + (q[j + 32] + q[j + 48]);
            for (int half = 8; half >= 1; half /= 2)
                for (int j = 0; j < half; j++) u[j] += u[j + half];
            float sum = u[0];
            for (int i = whole; i < plane; i++) sum += TTerm.Invoke(a[o + i], b[o + i]);
            sums[p] = sum;
        }
        return sums;
    }

    /// <summary>Eight planes side by side, each one sequential chain (the plain loop's additions).</summary>
    private struct Eight<TTerm, T> : IForBody where TTerm : struct, IPlaneTerm<T> where T : IFloatingPointIeee754<T>
    {
        public const int Group = 8;
        public T[] A, B, Sums;
        public int Plane, Planes, First;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int g)
        {
            int p0 = First + g * Group, count = Math.Min(Group, First + Planes - p0), plane = Plane;
            bool two = TTerm.TwoInputs;
            if (count < Group)
            {
                for (int p = p0; p < p0 + count; p++)
                {
                    T sum = T.Zero;
                    for (int i = p * plane; i < (p + 1) * plane; i++) sum += TTerm.Invoke(two ? A[i] : T.Zero, B[i]);
                    Sums[p] = sum;
                }
                return;
            }
            if ((long)(p0 + Group) * plane > B.Length || (two && (long)(p0 + Group) * plane > A.Length))
                throw new InvalidOperationException("plane reduction internal error: planes out of range.");
            ref T b = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(B), p0 * plane);
            ref T a = ref two ? ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(A), p0 * plane) : ref b;
            T s0 = T.Zero, s1 = T.Zero, s2 = T.Zero, s3 = T.Zero, s4 = T.Zero, s5 = T.Zero, s6 = T.Zero, s7 = T.Zero;
            for (int i = 0; i < plane; i++)
            {
                s0 += TTerm.Invoke(Unsafe.Add(ref a, i), Unsafe.Add(ref b, i));
                s1 += TTerm.Invoke(Unsafe.Add(ref a, plane + i), Unsafe.Add(ref b, plane + i));
                s2 += TTerm.Invoke(Unsafe.Add(ref a, 2 * plane + i), Unsafe.Add(ref b, 2 * plane + i));
                s3 += TTerm.Invoke(Unsafe.Add(ref a, 3 * plane + i), Unsafe.Add(ref b, 3 * plane + i));
                s4 += TTerm.Invoke(Unsafe.Add(ref a, 4 * plane + i), Unsafe.Add(ref b, 4 * plane + i));
                s5 += TTerm.Invoke(Unsafe.Add(ref a, 5 * plane + i), Unsafe.Add(ref b, 5 * plane + i));
                s6 += TTerm.Invoke(Unsafe.Add(ref a, 6 * plane + i), Unsafe.Add(ref b, 6 * plane + i));
                s7 += TTerm.Invoke(Unsafe.Add(ref a, 7 * plane + i), Unsafe.Add(ref b, 7 * plane + i));
            }
            var d = Sums.AsSpan(p0, Group);
            d[0] = s0; d[1] = s1; d[2] = s2; d[3] = s3; d[4] = s4; d[5] = s5; d[6] = s6; d[7] = s7;
        }
    }

    /// <summary>
    /// Eight float planes in the lanes of one Vector256 (AVX2 machines): each 8 × 8 block of terms (rows: planes) is
    /// transposed in registers and its columns added in increasing position order, so lane q is plane q's sequential
    /// chain; the tail positions come from one more block of the plane's last 8 positions, only its new columns added.
    /// </summary>
    private struct Eight256<TTerm, T> : IForBody where TTerm : struct, IPlaneTerm<T> where T : IFloatingPointIeee754<T>
    {
        public T[] A, B, Sums;
        public int Plane, First;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int g)
        {
            int plane = Plane, p0 = First + g * 8;
            bool two = TTerm.TwoInputs;
            if (typeof(T) != typeof(float) || plane < 8 || (long)(p0 + 8) * plane > B.Length || (two && (long)(p0 + 8) * plane > A.Length)
                || p0 + 8 > Sums.Length)
                throw new InvalidOperationException("plane reduction internal error: planes out of range.");
            ref float b = ref Unsafe.As<T, float>(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(B), p0 * plane));
            ref float a = ref two ? ref Unsafe.As<T, float>(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(A), p0 * plane)) : ref b;
            var acc = Vector256<float>.Zero;
            int i = 0;
            for (; i + 8 <= plane; i += 8) acc = Block(acc, ref a, ref b, plane, i, 0);
            if (i < plane) acc = Block(acc, ref a, ref b, plane, plane - 8, i - (plane - 8));
            Span<float> lanes = stackalloc float[8];
            acc.CopyTo(lanes);
            for (int q = 0; q < 8; q++) Sums[p0 + q] = Unsafe.As<float, T>(ref lanes[q]);
        }

        /// <summary>acc plus columns [skip, 8) of the 8 × 8 block of terms at position <paramref name="i"/>, in order.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> Block(Vector256<float> acc, ref float a, ref float b, int plane, int i, int skip)
        {
            var r0 = Row(ref a, ref b, plane, 0, i); var r1 = Row(ref a, ref b, plane, 1, i);
            var r2 = Row(ref a, ref b, plane, 2, i); var r3 = Row(ref a, ref b, plane, 3, i);
            var r4 = Row(ref a, ref b, plane, 4, i); var r5 = Row(ref a, ref b, plane, 5, i);
            var r6 = Row(ref a, ref b, plane, 6, i); var r7 = Row(ref a, ref b, plane, 7, i);
            Conv.Conv2dFast<float>.Interleave8(r0, r1, r2, r3, r4, r5, r6, r7, out var u0, out var u1, out var u2, out var u3,
                out var u4, out var u5, out var u6, out var u7);
            // Column j (position i + j of every plane): j = 0..3 from the low halves, 4..7 from the high halves.
            if (skip <= 0) acc += Avx.Permute2x128(u0, u4, 0x20);
            if (skip <= 1) acc += Avx.Permute2x128(u1, u5, 0x20);
            if (skip <= 2) acc += Avx.Permute2x128(u2, u6, 0x20);
            if (skip <= 3) acc += Avx.Permute2x128(u3, u7, 0x20);
            if (skip <= 4) acc += Avx.Permute2x128(u0, u4, 0x31);
            if (skip <= 5) acc += Avx.Permute2x128(u1, u5, 0x31);
            if (skip <= 6) acc += Avx.Permute2x128(u2, u6, 0x31);
            acc += Avx.Permute2x128(u3, u7, 0x31);
            return acc;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> Row(ref float a, ref float b, int plane, int q, int i)
        {
            nuint o = (nuint)(q * plane + i);
            var vb = Vector256.LoadUnsafe(ref b, o);
            return TTerm.Invoke256(TTerm.TwoInputs ? Vector256.LoadUnsafe(ref a, o) : vb, vb);
        }
    }

    /// <summary>
    /// Sixteen float planes in the lanes of one Vector512: each 16 × 16 block of terms (rows: planes, computed with one
    /// rounding each; a one-input term is taken after the transpose, of the transposed values) is transposed in
    /// registers and its columns added in increasing position order, so lane q is plane q's sequential chain; the tail
    /// positions come from one more block of the plane's last 16 positions (only its new columns added), or for planes
    /// narrower than 16 from a zero-padded block.
    /// </summary>
    private struct Sixteen<TTerm, T> : IForBody where TTerm : struct, IPlaneTerm<T> where T : IFloatingPointIeee754<T>
    {
        public T[] A, B, Sums;
        public int Plane, First;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int g)
        {
            int plane = Plane, p0 = First + g * 16;
            bool two = TTerm.TwoInputs;
            if (typeof(T) != typeof(float) || (long)(p0 + 16) * plane > B.Length || (two && (long)(p0 + 16) * plane > A.Length)
                || p0 + 16 > Sums.Length)
                throw new InvalidOperationException("plane reduction internal error: planes out of range.");
            ref float b = ref Unsafe.As<T, float>(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(B), p0 * plane));
            ref float a = ref two ? ref Unsafe.As<T, float>(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(A), p0 * plane)) : ref b;
            Span<float> terms = stackalloc float[256];
            Span<float> block = stackalloc float[256];
            ref float tr = ref MemoryMarshal.GetReference(terms);
            ref float br = ref MemoryMarshal.GetReference(block);
            var acc = Vector512<float>.Zero;
            int i = 0;
            if (two)
                for (; i + 16 <= plane; i += 16)
                {
                    for (int q = 0; q < 16; q++)
                    {
                        nuint o = (nuint)(q * plane + i);
                        TTerm.Invoke(Vector512.LoadUnsafe(ref a, o), Vector512.LoadUnsafe(ref b, o)).StoreUnsafe(ref tr, (nuint)(q * 16));
                    }
                    // block[j·16 + q] = terms[q·16 + j]
                    Kernels.Conv.Conv2dFast<float>.Transpose16(ref tr, 16, ref br, 16);
                    for (int j = 0; j < 16; j++) acc += Vector512.LoadUnsafe(ref br, (nuint)(j * 16));
                }
            else
                for (; i + 16 <= plane; i += 16)
                {
                    // block[j·16 + q] = b[plane q, position i + j]; the term is elementwise, so it is taken after.
                    Kernels.Conv.Conv2dFast<float>.Transpose16(ref Unsafe.Add(ref b, i), plane, ref br, 16);
                    for (int j = 0; j < 16; j++)
                    {
                        var v = Vector512.LoadUnsafe(ref br, (nuint)(j * 16));
                        acc += TTerm.Invoke(v, v);
                    }
                }
            if (i < plane && plane >= 16)
            {
                // The tail: the last 16 positions as one more block, only the columns not added yet (no scalar tail).
                int off = plane - 16;
                if (two)
                {
                    for (int q = 0; q < 16; q++)
                    {
                        nuint o = (nuint)(q * plane + off);
                        TTerm.Invoke(Vector512.LoadUnsafe(ref a, o), Vector512.LoadUnsafe(ref b, o)).StoreUnsafe(ref tr, (nuint)(q * 16));
                    }
                    Kernels.Conv.Conv2dFast<float>.Transpose16(ref tr, 16, ref br, 16);
                    for (int j = i - off; j < 16; j++) acc += Vector512.LoadUnsafe(ref br, (nuint)(j * 16));
                }
                else
                {
                    Kernels.Conv.Conv2dFast<float>.Transpose16(ref Unsafe.Add(ref b, off), plane, ref br, 16);
                    for (int j = i - off; j < 16; j++)
                    {
                        var v = Vector512.LoadUnsafe(ref br, (nuint)(j * 16));
                        acc += TTerm.Invoke(v, v);
                    }
                }
                i = plane;
            }
            Span<float> lanes = stackalloc float[16];
            acc.CopyTo(lanes);
            if (i < plane) Tail(lanes, p0, i);
            for (int q = 0; q < 16; q++) Sums[p0 + q] = Unsafe.As<float, T>(ref lanes[q]);
        }

        /// <summary>
        /// The tail positions [i, plane) as one more block (rows padded with zeros that are never added), transposed the same
        /// way, added onto the lanes the main loop left in <paramref name="lanes"/>. A method of its own that takes the
        /// lanes through memory: passing the accumulator itself kept it on the stack for the whole main loop (a load,
        /// add and store per column: the squeeze ran 5× slower).
        /// </summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private readonly void Tail(Span<float> lanes, int p0, int i)
        {
            var acc = Vector512.Create((ReadOnlySpan<float>)lanes);
            int plane = Plane, tail = plane - i;
            T[] av = TTerm.TwoInputs ? A : B, bv = B;
            Span<float> terms = stackalloc float[256];
            Span<float> block = stackalloc float[256];
            for (int q = 0; q < 16; q++)
            {
                int o = (p0 + q) * plane + i;
                for (int k = 0; k < tail; k++) terms[q * 16 + k] = float.CreateTruncating(TTerm.Invoke(av[o + k], bv[o + k]));
            }
            ref float br = ref MemoryMarshal.GetReference(block);
            Kernels.Conv.Conv2dFast<float>.Transpose16(ref MemoryMarshal.GetReference(terms), 16, ref br, 16);
            for (int j = 0; j < tail; j++) acc += Vector512.LoadUnsafe(ref br, (nuint)(j * 16));
            acc.CopyTo(lanes);
        }
    }
    /// <summary>One plane in <see cref="SumOrder.Blocked"/> order (float): 64 partial sums, a fixed tree, the tail.</summary>
    private struct Blocked<TTerm, T> : IForBody where TTerm : struct, IPlaneTerm<T> where T : IFloatingPointIeee754<T>
    {
        public const int Partials = 64;
        public T[] A, B, Sums;
        public int Plane, First;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int unit)
        {
            int p = First + unit, plane = Plane, whole = plane - plane % Partials;
            bool two = TTerm.TwoInputs;
            if (typeof(T) != typeof(float) || (long)(p + 1) * plane > B.Length || (two && (long)(p + 1) * plane > A.Length))
                throw new InvalidOperationException("plane reduction internal error: planes out of range.");
            ref float b = ref Unsafe.As<T, float>(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(B), p * plane));
            ref float a = ref two ? ref Unsafe.As<T, float>(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(A), p * plane)) : ref b;
            Span<float> u = stackalloc float[16];
            if (SimdWidth.Path == SimdPath.Vector512)
            {
                Vector512<float> q0 = default, q1 = default, q2 = default, q3 = default;
                for (nuint i = 0; i < (nuint)whole; i += Partials)
                {
                    q0 += Term512(ref a, ref b, i); q1 += Term512(ref a, ref b, i + 16);
                    q2 += Term512(ref a, ref b, i + 32); q3 += Term512(ref a, ref b, i + 48);
                }
                ((q0 + q1) + (q2 + q3)).CopyTo(u);
            }
            else if (SimdWidth.Path == SimdPath.Vector256)
            {
                // Partials 8k..8k+7 in q_k: the 512-bit form's q0 is (q_0, q_1), q1 is (q_2, q_3), and so on.
                Vector256<float> q0 = default, q1 = default, q2 = default, q3 = default, q4 = default, q5 = default, q6 = default, q7 = default;
                for (nuint i = 0; i < (nuint)whole; i += Partials)
                {
                    q0 += Term256(ref a, ref b, i); q1 += Term256(ref a, ref b, i + 8);
                    q2 += Term256(ref a, ref b, i + 16); q3 += Term256(ref a, ref b, i + 24);
                    q4 += Term256(ref a, ref b, i + 32); q5 += Term256(ref a, ref b, i + 40);
                    q6 += Term256(ref a, ref b, i + 48); q7 += Term256(ref a, ref b, i + 56);
                }
                ((q0 + q2) + (q4 + q6)).CopyTo(u);
                ((q1 + q3) + (q5 + q7)).CopyTo(u[8..]);
            }
            else
            {
                Span<float> q = stackalloc float[Partials];
                q.Clear();
                for (int i = 0; i < whole; i += Partials)
                    for (int j = 0; j < Partials; j++)
                        q[j] += float.CreateTruncating(TTerm.Invoke(T.CreateTruncating(Unsafe.Add(ref a, i + j)), T.CreateTruncating(Unsafe.Add(ref b, i + j))));
                for (int j = 0; j < 16; j++) u[j] = (q[j] + q[j + 16]) + (q[j + 32] + q[j + 48]);
            }
            for (int half = 8; half >= 1; half /= 2)
                for (int j = 0; j < half; j++) u[j] += u[j + half];
            float sum = u[0];
            for (int i = whole; i < plane; i++)
                sum += float.CreateTruncating(TTerm.Invoke(T.CreateTruncating(Unsafe.Add(ref a, i)), T.CreateTruncating(Unsafe.Add(ref b, i))));
            Sums[p] = T.CreateTruncating(sum);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> Term512(ref float a, ref float b, nuint i)
        {
            var vb = Vector512.LoadUnsafe(ref b, i);
            return TTerm.Invoke(TTerm.TwoInputs ? Vector512.LoadUnsafe(ref a, i) : vb, vb);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> Term256(ref float a, ref float b, nuint i)
        {
            var vb = Vector256.LoadUnsafe(ref b, i);
            return TTerm.Invoke256(TTerm.TwoInputs ? Vector256.LoadUnsafe(ref a, i) : vb, vb);
        }
    }
}
