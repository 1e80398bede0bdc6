namespace Attention.Reference.Ops;

/// <summary>
/// Global (output 1x1) average and max pooling over H×W of an NCHW tensor, forward and backward side by side
/// (docs/derivations/se.md, the squeeze). These are PyTorch's <c>adaptive_avg_pool2d(x, 1)</c> and
/// <c>adaptive_max_pool2d(x, 1)</c> with the same conventions.
/// </summary>
public static class GlobalPool
{
    /// <summary>
    /// Eq. (pool.1), SE's squeeze Eq. (se.1): z[n, c] = (Σ_{h,w} x[n, c, h, w]) / (H·W). The sum is sequential in increasing index order
    /// (h outer, w inner), then divided once by H·W (as PyTorch's sum-then-divide). Each (n, c) is one independent
    /// output, so the result does not depend on the thread count.
    /// </summary>
    /// <returns>z as [N, C].</returns>
    public static DenseTensor<T> AvgForward<T>(DenseTensor<T> x) where T : IFloatingPointIeee754<T>
    {
        ShapeUtil.RequireRank(x, "x", 4, "N, C, H, W");
        var z = new DenseTensor<T>(x.Dim(0), x.Dim(1));
        AvgForward(x, z);
        return z;
    }

    /// <summary>
    /// Eq. (pool.1) into <paramref name="z"/> (N·C elements, any shape): allocates nothing. <paramref name="order"/>
    /// picks the sum's order: the sequential chain above, or the fast kernels' blocked partial sums.
    /// </summary>
    public static void AvgForward<T>(DenseTensor<T> x, DenseTensor<T> z, Kernels.SumOrder order = Kernels.SumOrder.Sequential)
        where T : IFloatingPointIeee754<T>
    {
        ShapeUtil.RequireRank(x, "x", 4, "N, C, H, W");
        if (z.Length != x.Dim(0) * x.Dim(1)) throw new ArgumentException($"z must hold {x.Dim(0) * x.Dim(1)} values, has {z.Length}");
        int planes = x.Dim(0) * x.Dim(1), plane = x.Dim(2) * x.Dim(3);
        // One chain per plane in the order asked (Kernels.PlaneReduce: the plain loop's bits, or the blocked order's,
        // on every path), then one division.
        Kernels.PlaneReduce.Sums<Kernels.ValueTerm<T>, T>(x.Data, x.Data, 0, planes, plane, z.Data, order);
        T n = T.CreateChecked(plane);
        var zd = z.Data;
        for (int p = 0; p < planes; p++) zd[p] /= n;
    }

    /// <summary>
    /// Eq. (pool.2), the second term of Eq. (se.17): the adjoint of the average, dx[n, c, h, w] += dz[n, c] / (H·W). Adds into
    /// <paramref name="dx"/> (which must have x's shape).
    /// </summary>
    public static void AvgBackwardAccumulate<T>(DenseTensor<T> dz, DenseTensor<T> dx) where T : IFloatingPointIeee754<T>
    {
        ShapeUtil.RequireRank(dx, "dx", 4, "N, C, H, W");
        int n = dx.Dim(0), c = dx.Dim(1), plane = dx.Dim(2) * dx.Dim(3);
        ShapeUtil.Require(dz, "dz", n, c);
        T count = T.CreateChecked(plane);
        var dxd = dx.Data;
        var dzd = dz.Data;
        Compute.For(n * c, p =>
        {
            T g = dzd[p] / count;
            int o = p * plane;
            for (int i = 0; i < plane; i++) dxd[o + i] += g;
        });
    }

    /// <summary>
    /// Eq. (pool.3), SE's Eq. (se.2): z[n, c] = max_{h,w} x[n, c, h, w] and its flat index a[n, c] = h·W + w, scanned in row-major
    /// (h, w) order exactly as PyTorch's CPU kernel: start from −∞ at the first index, take a value when it is
    /// strictly greater or NaN. Ties therefore keep the FIRST maximal index; a NaN wins (the last NaN in the plane).
    /// </summary>
    /// <returns>z as [N, C] and the argmax a as int[N·C].</returns>
    public static (DenseTensor<T> Z, int[] ArgMax) MaxForward<T>(DenseTensor<T> x) where T : IFloatingPointIeee754<T>
    {
        ShapeUtil.RequireRank(x, "x", 4, "N, C, H, W");
        int n = x.Dim(0), c = x.Dim(1), plane = x.Dim(2) * x.Dim(3);
        var z = new DenseTensor<T>(n, c);
        var arg = new int[n * c];
        var xd = x.Data;
        var zd = z.Data;
        Compute.For(n * c, p =>
        {
            T best = T.NegativeInfinity;
            int bestIndex = 0;
            int o = p * plane;
            for (int i = 0; i < plane; i++)
            {
                T v = xd[o + i];
                if (v > best || T.IsNaN(v))
                {
                    best = v;
                    bestIndex = i;
                }
            }
            zd[p] = best;
            arg[p] = bestIndex;
        });
        return (z, arg);
    }

    /// <summary>
    /// Eq. (pool.4), the second term of Eq. (se.18): the max's subgradient, dx[n, c, a[n, c]] += dz[n, c]; every other position gets 0.
    /// Adds into <paramref name="dx"/>.
    /// </summary>
    public static void MaxBackwardAccumulate<T>(DenseTensor<T> dz, int[] argMax, DenseTensor<T> dx) where T : IFloatingPointIeee754<T>
    {
        ShapeUtil.RequireRank(dx, "dx", 4, "N, C, H, W");
        int n = dx.Dim(0), c = dx.Dim(1), plane = dx.Dim(2) * dx.Dim(3);
        ShapeUtil.Require(dz, "dz", n, c);
        if (argMax.Length != n * c) throw new ArgumentException($"argMax has {argMax.Length} entries, expected {n * c}.", nameof(argMax));
        for (int p = 0; p < n * c; p++) dx.Data[p * plane + argMax[p]] += dz.Data[p];
    }
}
