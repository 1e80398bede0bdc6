namespace Attention.Reference.Ops;

/// <summary>
/// The channel-wise rescaling every attention module ends in, y[n, c, h, w] = x[n, c, h, w] · s[n, c] (SE's Eq. (se.7),
/// GCT's Eq. (gct.9)), forward and backward side by side (docs/derivations/se.md):
/// <list type="bullet">
/// <item>Eq. (se.8): ∂s[n, c] = Σ_{h,w} ∂y·x, one sequential chain per plane in increasing index (h outer, w inner),
/// each term rounded before it is added (multiply, round, add, round; never fused);</item>
/// <item>Eqs. (se.17)/(se.18), first term: ∂x = ∂y·s, plus the squeeze's adjoint where it is a per-plane constant
/// (dz / (H·W) for the average squeeze), one rounded sum per element.</item>
/// </list>
/// Every element and every chain is computed alone, so the result is independent of the thread count and of the vector
/// width: the plane sums run on <see cref="Kernels.PlaneReduce"/>, which interleaves independent chains and gives the
/// plain loop's bits.
/// </summary>
public static class ChannelScale
{
    /// <summary>Eq. (se.7): y = x · s, s given per plane (N·C values); <paramref name="y"/> may be <paramref name="x"/>.</summary>
    public static void Forward<T>(DenseTensor<T> x, T[] s, DenseTensor<T> y) where T : IFloatingPointIeee754<T>
    {
        var (planes, plane) = Planes(x, s.Length);
        if (y.Length != x.Length) throw new ArgumentException($"y must hold {x.Length} values, has {y.Length}.", nameof(y));
        Compute.For(planes, new Scale<T> { X = x.Data, Y = y.Data, S = s, Plane = plane });
    }

    /// <summary>
    /// Eq. (se.7) for planes [<paramref name="first"/>, <paramref name="first"/> + <paramref name="planes"/>) of
    /// <paramref name="plane"/> elements: y = x · s[p] (one sample of a batch, while its planes are in cache).
    /// </summary>
    public static void Forward<T>(T[] x, T[] s, T[] y, int first, int planes, int plane) where T : IFloatingPointIeee754<T>
    {
        long end = checked((long)(first + planes) * plane);
        if (first < 0 || planes < 0 || x.Length < end || y.Length < end || s.Length < first + planes)
            throw new ArgumentException($"channel scale: planes {first}..{first + planes} of {plane} out of range.");
        Compute.ForWork(planes, new Scale<T> { X = x, Y = y, S = s, Plane = plane, First = first }, (long)planes * plane);
    }

    /// <summary>
    /// Eq. (se.8): ds[p] = Σ_i dy[p·P + i]·x[p·P + i] for every plane p, sequential in i from +0 (P = H·W), or in the
    /// fast kernels' blocked order.
    /// </summary>
    public static void PlaneDots<T>(DenseTensor<T> dy, DenseTensor<T> x, T[] ds, Kernels.SumOrder order = Kernels.SumOrder.Sequential)
        where T : IFloatingPointIeee754<T>
    {
        var (planes, plane) = Planes(x, ds.Length);
        if (dy.Length != x.Length) throw new ArgumentException($"dy must hold {x.Length} values, has {dy.Length}.", nameof(dy));
        Kernels.PlaneReduce.Sums<Kernels.ProductTerm<T>, T>(dy.Data, x.Data, 0, planes, plane, ds, order);
    }

    /// <summary>
    /// Eq. (se.17) (with <paramref name="add"/>: the average squeeze's adjoint dz / (H·W) per plane) or the first term of
    /// Eq. (se.18) (<paramref name="add"/> null): dx = dy·s (+ add), one rounding for the product and one for the sum.
    /// </summary>
    public static void InputGradient<T>(DenseTensor<T> dy, T[] s, T[]? add, DenseTensor<T> dx) where T : IFloatingPointIeee754<T>
    {
        var (planes, plane) = Planes(dy, s.Length);
        if (dx.Length != dy.Length) throw new ArgumentException($"dx must hold {dy.Length} values, has {dx.Length}.", nameof(dx));
        if (add is not null && add.Length != planes) throw new ArgumentException($"add must hold {planes} values, has {add.Length}.", nameof(add));
        Compute.For(planes, new Scale<T> { X = dy.Data, Y = dx.Data, S = s, A = add, Plane = plane });
    }

    private static (int Planes, int Plane) Planes<T>(DenseTensor<T> x, int perPlane) where T : IFloatingPointIeee754<T>
    {
        ShapeUtil.RequireRank(x, "x", 4, "N, C, H, W");
        int planes = x.Dim(0) * x.Dim(1);
        if (perPlane != planes) throw new ArgumentException($"expected one value per plane ({planes}), got {perPlane}.");
        return (planes, x.Dim(2) * x.Dim(3));
    }

    /// <summary>One plane: y = x·s[p] (+ a[p]), lane by lane with <see cref="Vector{T}"/> (two roundings, never fused).</summary>
    private struct Scale<T> : IForBody where T : IFloatingPointIeee754<T>
    {
        public T[] X, Y, S;
        public T[]? A;
        public int Plane, First;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int i)
        {
            int p = First + i;
            var x = X.AsSpan(p * Plane, Plane);
            var y = Y.AsSpan(p * Plane, Plane);
            if (A is null) SpanArithmetic.Scale(x, S[p], y);
            else SpanArithmetic.ScaleAddConstant(x, S[p], A[p], y);
        }
    }
}
