using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Attention.Reference.Tensors;

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

    /// <summary>Eq. (pool.1) into <paramref name="z"/> (N·C elements, any shape): allocates nothing.</summary>
    public static void AvgForward<T>(DenseTensor<T> x, DenseTensor<T> z) where T : IFloatingPointIeee754<T>
    {
        ShapeUtil.RequireRank(x, "x", 4, "N, C, H, W");
        if (z.Length != x.Dim(0) * x.Dim(1)) throw new ArgumentException($"z must hold {x.Dim(0) * x.Dim(1)} values, has {z.Length}");
        int planes = x.Dim(0) * x.Dim(1), plane = x.Dim(2) * x.Dim(3);
        if (typeof(T) == typeof(float) && planes % 16 == 0 && plane >= 16 && Kernels.SimdWidth.Path == Kernels.SimdPath.Vector512
            && System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
        {
            Compute.For(planes / 16, new AvgPlanes16 { X = (float[])(object)x.Data, Z = (float[])(object)z.Data, Plane = plane });
            return;
        }
        Compute.For((planes + AvgPlanes<T>.Group - 1) / AvgPlanes<T>.Group,
            new AvgPlanes<T> { X = x.Data, Z = z.Data, Plane = plane, Planes = planes });
    }

    /// <summary>
    /// 16 planes at once on Vector512: blocks of 16 positions × 16 planes transposed in registers, then added to one
    /// accumulator lane per plane in increasing position order, so every lane is its plane's sequential chain — the
    /// same additions as one plane alone (same bits), with a sixteenth of the loads.
    /// </summary>
    private struct AvgPlanes16 : IForBody
    {
        public float[] X, Z;
        public int Plane;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int g)
        {
            int plane = Plane, p0 = g * 16;
            if ((long)(p0 + 16) * plane > X.Length || p0 + 16 > Z.Length) throw new InvalidOperationException("squeeze internal error: planes out of range.");
            ref float x = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(X), p0 * plane);
            Span<float> block = stackalloc float[256];
            ref float b = ref MemoryMarshal.GetReference(block);
            var acc = System.Runtime.Intrinsics.Vector512<float>.Zero;
            int i = 0;
            for (; i + 16 <= plane; i += 16)
            {
                // block[j·16 + q] = x[plane q, position i + j]
                Conv2dFast<float>.Transpose16(ref Unsafe.Add(ref x, i), plane, ref b, 16);
                for (int j = 0; j < 16; j++) acc += System.Runtime.Intrinsics.Vector512.LoadUnsafe(ref b, (nuint)(j * 16));
            }
            Span<float> sums = stackalloc float[16];
            System.Runtime.Intrinsics.Vector512.CopyTo(acc, sums);
            for (int q = 0; q < 16; q++)
            {
                float sum = sums[q];
                for (int k = i; k < plane; k++) sum += Unsafe.Add(ref x, q * plane + k);
                Z[p0 + q] = sum / plane;
            }
        }
    }

    /// <summary>
    /// A group of up to <see cref="Group"/> planes summed side by side: each plane's sum is still one sequential chain in
    /// index order (the same additions as a plane alone, so the same bits); interleaving only hides the add latency.
    /// </summary>
    private struct AvgPlanes<T> : IForBody where T : IFloatingPointIeee754<T>
    {
        public const int Group = 8;
        public T[] X, Z;
        public int Plane, Planes;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int g)
        {
            int p0 = g * Group, count = Math.Min(Group, Planes - p0), plane = Plane;
            T n = T.CreateChecked(plane);
            if (count < Group || (long)(p0 + Group) * plane > X.Length)
            {
                for (int p = p0; p < p0 + count; p++)
                {
                    T sum = T.Zero;
                    var row = X.AsSpan(p * plane, plane);
                    for (int i = 0; i < row.Length; i++) sum += row[i];
                    Z[p] = sum / n;
                }
                return;
            }
            ref T x = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(X), p0 * plane);
            T s0 = T.Zero, s1 = T.Zero, s2 = T.Zero, s3 = T.Zero, s4 = T.Zero, s5 = T.Zero, s6 = T.Zero, s7 = T.Zero;
            for (int i = 0; i < plane; i++)
            {
                s0 += Unsafe.Add(ref x, i);
                s1 += Unsafe.Add(ref x, plane + i);
                s2 += Unsafe.Add(ref x, 2 * plane + i);
                s3 += Unsafe.Add(ref x, 3 * plane + i);
                s4 += Unsafe.Add(ref x, 4 * plane + i);
                s5 += Unsafe.Add(ref x, 5 * plane + i);
                s6 += Unsafe.Add(ref x, 6 * plane + i);
                s7 += Unsafe.Add(ref x, 7 * plane + i);
            }
            var z = Z.AsSpan(p0, Group);
            z[0] = s0 / n; z[1] = s1 / n; z[2] = s2 / n; z[3] = s3 / n;
            z[4] = s4 / n; z[5] = s5 / n; z[6] = s6 / n; z[7] = s7 / n;
        }
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
