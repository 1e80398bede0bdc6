using System.Numerics.Tensors;
using System.Runtime.Intrinsics.X86;
using Attention.Reference.Kernels;

namespace Attention.Reference.Kernels.Conv;

/// <summary>The weight and bias gradients, Eqs. (conv.11)–(conv.12): the direct lane sums and the packed product.</summary>
internal static partial class Conv2dFast<TF>
{
    // ---------------------------------------------------------------- weight gradient, Eqs. (conv.11)–(conv.12)

    /// <summary>dw from x and dy into a preallocated dw.</summary>
    public static void BackwardWeight(DenseTensor<TF> x, DenseTensor<TF> dy, Conv2dGeometry g, DenseTensor<TF> dw)
    {
        if (dy.Length == 0 || x.Length == 0)
        {
            Array.Clear(dw.Data); // an empty sum: +0
            return;
        }
        var path = Conv2dTuning.Path;
        void Report(string algorithm) => ConvDispatch.Report("weight gradient", algorithm, path, g, x.Dim(0), x.Dim(2), x.Dim(3));
        if (ConvDispatch.Depthwise(g))
        {
            DepthwiseConv2dFast<TF>.BackwardWeight(x, dy, g, dw);
            Report("depthwise");
            return;
        }
        int gridSize = dy.Dim(2) * Ceil(x.Dim(3) + 2 * g.Padding.W, g.Stride.W);
        if (ConvDispatch.DirectWeightGradient(gridSize))
        {
            BackwardWeightDirect(x.Data, x.Dim(0), x.Dim(2), x.Dim(3), dy.Data, dy.Dim(2), dy.Dim(3), g, dw.Data);
            Report("direct");
            return;
        }
        Report("packed");
        int nr = Nr(path);
        var packedOff = PackedOffsets(nr);
        int n = x.Dim(0), h = x.Dim(2), w = x.Dim(3), ho = dy.Dim(2), wo = dy.Dim(3), p = ho * wo;
        int groups = g.Groups, og = g.OutPerGroup, ig = g.InPerGroup, k = g.ReductionLength;
        int rcMax = Conv2dTuning.WeightGradChunk, chunksPerImage = Ceil(p, rcMax), chunks = n * chunksPerImage;
        // All O/G rows in one unit: each packed im2colᵀ panel is then built once per call.
        int mTilesG = Ceil(og, MR), mcTiles = mTilesG, mBlocks = 1;
        int kBlocks = Ceil(k, Conv2dTuning.NCW);
        int wLen = g.OutChannels * k;
        var target = chunks == 1 ? dw.Data : Grow(ref t_partials, (long)chunks * wLen);
        var xData = x.Data;
        var dyData = dy.Data;
        var geo = new Im2Col(g, h, w, wo);
        // The dY rows of each (group, chunk, row block) packed once, by a pass of their own: each of the K/128 column
        // units used to pack them again (36 times for 3x3 512→512 at 7 × 7).
        long aBlock = (long)mcTiles * MR * Math.Min(rcMax, p);
        var apackAll = Grow(ref t_dwA, groups * chunks * mBlocks * aBlock);
        var unit = new PackedWeightGradUnit
        {
            G = g, Path = path, PackedOff = packedOff, XData = xData, DyData = dyData, Target = target, APacked = apackAll,
            ABlock = (int)aBlock, Geo = geo, Nr = nr, P = p, H = h, W = w, Og = og, Ig = ig, K = k, RcMax = rcMax,
            ChunksPerImage = chunksPerImage, Chunks = chunks, MTilesG = mTilesG, McTiles = mcTiles, MBlocks = mBlocks,
            KBlocks = kBlocks, WLen = wLen,
        };
        Compute.For(groups * chunks * mBlocks, new PackedDyUnit { Unit = unit });
        Compute.For(groups * chunks * mBlocks * kBlocks, unit);
        // Eq. (conv.12): partial sums combined in chunk order (image, then position chunk), elementwise.
        if (chunks > 1) CombinePartials(target, chunks, wLen, k, g.OutChannels, dw.Data);
    }

    /// <summary>Lanes of the weight-gradient partial sums: 64 bytes' worth (16 float, 8 double) on every path.</summary>
    private static int Lanes => 64 / Unsafe.SizeOf<TF>();

    /// <summary>
    /// Any stride, Eq. (conv.12): dw[o, k] = Σ_pos dYgrid[o, pos]·xpad[off[k] + pos] over the output grid Ho × Wq
    /// (junk columns of dY zero), with no packing. Each element keeps <see cref="Lanes"/> partial sums (lane l takes
    /// the positions ≡ l mod Lanes of a fixed chunk of <see cref="Conv2dTuning.WeightGradChunkDirect"/> positions of one
    /// image, by FMA in increasing order), reduces them by a fixed pairwise tree, and the chunk totals are added in
    /// (image, chunk) order. Tiles of 4 × 6 outputs, 24 accumulators.
    /// </summary>
    private static void BackwardWeightDirect(TF[] xData, int n, int h, int w, TF[] dyData, int ho, int wo, Conv2dGeometry g, TF[] dwData)
    {
        var path = Conv2dTuning.Path;
        int lanes = Lanes;
        int groups = g.Groups, og = g.OutPerGroup, ig = g.InPerGroup, k = g.ReductionLength, cin = g.InChannels, cout = g.OutChannels;
        int wp = Ceil(w + 2 * g.Padding.W, g.Stride.W), grid = ho * wp;
        int gridPad = Ceil(grid, lanes) * lanes;
        // A 1×1 kernel, stride 1, no padding, on a whole number of lane vectors of positions: x and dY already are the
        // padded input and the grid (no junk columns, nothing past the grid), so both are read in place instead of
        // copied (the copy of x was 13 % of a 1x1 256→64 @56 weight gradient). The same values, the same bits.
        bool inPlace = g.Kernel == (1, 1) && g.Padding == (0, 0) && g.Stride == (1, 1) && grid == gridPad && wp == wo
            && ConvDispatch.PointwiseInPlaceAllowed
            && (long)n * cin * h * w <= xData.Length && (long)n * cout * grid <= dyData.Length;
        int plane;
        TF[] xpad, dyp;
        if (inPlace)
        {
            (xpad, plane, dyp) = (xData, h * w, dyData);
        }
        else
        {
            xpad = PhaseInput(xData, n, g, h, w, gridPad - grid + 2 * lanes + (g.Kernel.W - 1) * g.Dilation.W, out _, out plane, out _);
            // dY on the padded grid: [N·O][gridPad], zero at columns ow ≥ Wo and past the grid.
            dyp = Grow(ref t_dypad, (long)n * cout * gridPad);
            Compute.For(n * cout, new DyGrid { Dyp = dyp, DyData = dyData, GridPad = gridPad, Ho = ho, Wo = wo, Wp = wp });
        }
        var off = PhaseOffsets(g, h, wp, plane);
        int rc = Conv2dTuning.WeightGradChunkDirect, chunksPerImage = Ceil(gridPad, rc), chunks = n * chunksPerImage;
        // A unit owns whole rows of dw (all K columns of 16 rows o) so that no two threads write the same cache
        // line while they work.
        const int BlockO = 8;
        int oBlocks = Ceil(og, BlockO), kBlocks = 1, BlockK = k;
        int wLen = cout * k;
        var target = chunks == 1 ? dwData : Grow(ref t_partials, (long)chunks * wLen);
        Compute.For(groups * chunks * oBlocks * kBlocks, new LaneUnit
        {
            Target = target, XPad = xpad, Dyp = dyp, Off = off, Path = path, Lanes = lanes, KBlocks = kBlocks, OBlocks = oBlocks,
            Chunks = chunks, ChunksPerImage = chunksPerImage, Rc = rc, GridPad = gridPad, WLen = wLen, Cin = cin, Cout = cout,
            Ig = ig, Og = og, K = k, Plane = plane, BlockO = BlockO, BlockK = BlockK,
        });
        if (chunks > 1) CombinePartials(target, chunks, wLen, k, cout, dwData);
    }

    /// <summary>One work unit of the direct weight gradient: (group, chunk, 8 rows of dw).</summary>
    private struct LaneUnit : IForBody
    {
        public TF[] Target, XPad, Dyp;
        public int[] Off;
        public SimdPath Path;
        public int Lanes, KBlocks, OBlocks, Chunks, ChunksPerImage, Rc, GridPad, WLen, Cin, Cout, Ig, Og, K, Plane, BlockO, BlockK;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int u)
        {
            const int TO = 4, TK = 6;
            var target = Target;
            var xpad = XPad;
            var dyp = Dyp;
            var off = Off;
            var path = Path;
            int lanes = Lanes, kBlocks = KBlocks, oBlocks = OBlocks, chunks = Chunks, chunksPerImage = ChunksPerImage, rc = Rc;
            int gridPad = GridPad, wLen = WLen, cin = Cin, cout = Cout, ig = Ig, og = Og, k = K, plane = Plane;
            int kb = u % kBlocks, rest = u / kBlocks;
            int ob = rest % oBlocks; rest /= oBlocks;
            int ch = rest % chunks, grp = rest / chunks;
            int img = ch / chunksPerImage, pos0 = ch % chunksPerImage * rc, pos1 = Math.Min(gridPad, pos0 + rc);
            var part = target.AsSpan(chunks == 1 ? 0 : ch * wLen, wLen);
            var xg = xpad.AsSpan((img * cin + grp * ig) * plane);
            var dyg = dyp.AsSpan((img * cout + grp * og) * gridPad, og * gridPad);
            Span<int> aRow = stackalloc int[TO];
            Span<int> bCol = stackalloc int[TK];
            Span<TF> sums = stackalloc TF[TO * TK];
            int oEnd = Math.Min(og, (ob + 1) * BlockO), kEnd = Math.Min(k, (kb + 1) * BlockK);
            for (int o0 = ob * BlockO; o0 < oEnd; o0 += TO)
            for (int k0 = kb * BlockK; k0 < kEnd; k0 += TK)
            {
                // Clamp the edge tiles onto valid rows/columns (their duplicate results are discarded).
                for (int r = 0; r < TO; r++) aRow[r] = Math.Min(o0 + r, og - 1) * gridPad + pos0;
                for (int t = 0; t < TK; t++) bCol[t] = off[Math.Min(k0 + t, k - 1)] + pos0;
                int steps = (pos1 - pos0) / lanes;
                if (path == SimdPath.Vector512 && Vector512<TF>.Count == lanes)
                    LaneSums512(dyg, xg, aRow, bCol, steps, sums);
                else if (SimdWidth.Uses256(path) && 2 * Vector256<TF>.Count == lanes)
                    LaneSums256(dyg, xg, aRow, bCol, steps, sums);
                else
                    LaneSumsScalar(dyg, xg, aRow, bCol, steps, lanes, sums);
                for (int r = 0; r < TO && o0 + r < oEnd; r++)
                for (int t = 0; t < TK && k0 + t < kEnd; t++)
                    part[(grp * og + o0 + r) * k + k0 + t] = sums[r * TK + t];
            }
        }
    }

    /// <summary>One row of dY laid on the padded grid (zero at junk columns and past the grid).</summary>
    private struct DyGrid : IForBody
    {
        public TF[] Dyp, DyData;
        public int GridPad, Ho, Wo, Wp;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int row)
        {
            var dyp = Dyp;
            var dyData = DyData;
            int gridPad = GridPad, ho = Ho, wo = Wo, wp = Wp;
            var dst = dyp.AsSpan(row * gridPad, gridPad);
            dst.Clear();
            var src = dyData.AsSpan(row * ho * wo, ho * wo);
            for (int i = 0; i < ho; i++) src.Slice(i * wo, wo).CopyTo(dst.Slice(i * wp, wo));
        }
    }

    /// <summary>24 accumulators of one Vector512 each, reduced by <see cref="Reduce(Vector512{TF})"/> into sums[r·6 + t].</summary>
    private static void LaneSums512(Span<TF> dyg, Span<TF> xg, Span<int> aRow, Span<int> bCol, int steps, Span<TF> sums)
    {
        ref TF a = ref MemoryMarshal.GetReference(dyg);
        ref TF b = ref MemoryMarshal.GetReference(xg);
        int l = Vector512<TF>.Count;
        // Bounds: every row/column read ends inside its span.
        for (int r = 0; r < 4; r++) if (aRow[r] + steps * l > dyg.Length) throw new InvalidOperationException("conv2d internal error: dY read out of range.");
        for (int t = 0; t < 6; t++) if (bCol[t] + steps * l > xg.Length) throw new InvalidOperationException("conv2d internal error: x read out of range.");
        ref TF a0 = ref Unsafe.Add(ref a, aRow[0]);
        ref TF a1 = ref Unsafe.Add(ref a, aRow[1]);
        ref TF a2 = ref Unsafe.Add(ref a, aRow[2]);
        ref TF a3 = ref Unsafe.Add(ref a, aRow[3]);
        ref TF b0 = ref Unsafe.Add(ref b, bCol[0]);
        ref TF b1 = ref Unsafe.Add(ref b, bCol[1]);
        ref TF b2 = ref Unsafe.Add(ref b, bCol[2]);
        ref TF b3 = ref Unsafe.Add(ref b, bCol[3]);
        ref TF b4 = ref Unsafe.Add(ref b, bCol[4]);
        ref TF b5 = ref Unsafe.Add(ref b, bCol[5]);
        Vector512<TF> c00 = default, c01 = default, c02 = default, c03 = default, c04 = default, c05 = default;
        Vector512<TF> c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        Vector512<TF> c20 = default, c21 = default, c22 = default, c23 = default, c24 = default, c25 = default;
        Vector512<TF> c30 = default, c31 = default, c32 = default, c33 = default, c34 = default, c35 = default;
        for (int i = 0; i < steps; i++)
        {
            nuint e = (nuint)(i * l);
            var y0 = Vector512.LoadUnsafe(ref a0, e);
            var y1 = Vector512.LoadUnsafe(ref a1, e);
            var y2 = Vector512.LoadUnsafe(ref a2, e);
            var y3 = Vector512.LoadUnsafe(ref a3, e);
            var x0 = Vector512.LoadUnsafe(ref b0, e);
            c00 = Fma(y0, x0, c00); c10 = Fma(y1, x0, c10); c20 = Fma(y2, x0, c20); c30 = Fma(y3, x0, c30);
            var x1 = Vector512.LoadUnsafe(ref b1, e);
            c01 = Fma(y0, x1, c01); c11 = Fma(y1, x1, c11); c21 = Fma(y2, x1, c21); c31 = Fma(y3, x1, c31);
            var x2 = Vector512.LoadUnsafe(ref b2, e);
            c02 = Fma(y0, x2, c02); c12 = Fma(y1, x2, c12); c22 = Fma(y2, x2, c22); c32 = Fma(y3, x2, c32);
            var x3 = Vector512.LoadUnsafe(ref b3, e);
            c03 = Fma(y0, x3, c03); c13 = Fma(y1, x3, c13); c23 = Fma(y2, x3, c23); c33 = Fma(y3, x3, c33);
            var x4 = Vector512.LoadUnsafe(ref b4, e);
            c04 = Fma(y0, x4, c04); c14 = Fma(y1, x4, c14); c24 = Fma(y2, x4, c24); c34 = Fma(y3, x4, c34);
            var x5 = Vector512.LoadUnsafe(ref b5, e);
            c05 = Fma(y0, x5, c05); c15 = Fma(y1, x5, c15); c25 = Fma(y2, x5, c25); c35 = Fma(y3, x5, c35);
        }
        if (typeof(TF) == typeof(float) && SimdWidth.Avx512Forms)
        {
            // Sixteen (then eight) accumulators reduced together through register shuffles: the same tree per accumulator.
            Span<float> r = stackalloc float[32];
            ReduceSixteen(F(c00), F(c01), F(c02), F(c03), F(c04), F(c05), F(c10), F(c11), F(c12), F(c13), F(c14), F(c15),
                F(c20), F(c21), F(c22), F(c23)).CopyTo(r);
            var z = Vector512<float>.Zero;
            ReduceSixteen(F(c24), F(c25), F(c30), F(c31), F(c32), F(c33), F(c34), F(c35), z, z, z, z, z, z, z, z).CopyTo(r[16..]);
            var fs = MemoryMarshal.Cast<TF, float>(sums);
            for (int lane = 0; lane < 16; lane++)
            {
                fs[SixteenOrder[lane]] = r[lane];
                if (SixteenOrder[lane] < 8) fs[16 + SixteenOrder[lane]] = r[16 + lane];
            }
            return;
        }
        sums[0] = Reduce(c00); sums[1] = Reduce(c01); sums[2] = Reduce(c02); sums[3] = Reduce(c03); sums[4] = Reduce(c04); sums[5] = Reduce(c05);
        sums[6] = Reduce(c10); sums[7] = Reduce(c11); sums[8] = Reduce(c12); sums[9] = Reduce(c13); sums[10] = Reduce(c14); sums[11] = Reduce(c15);
        sums[12] = Reduce(c20); sums[13] = Reduce(c21); sums[14] = Reduce(c22); sums[15] = Reduce(c23); sums[16] = Reduce(c24); sums[17] = Reduce(c25);
        sums[18] = Reduce(c30); sums[19] = Reduce(c31); sums[20] = Reduce(c32); sums[21] = Reduce(c33); sums[22] = Reduce(c34); sums[23] = Reduce(c35);
    }

    private static Vector512<float> F(Vector512<TF> v) => v.AsSingle();

    /// <summary>The accumulator whose sum lane L = 4j + q of <see cref="ReduceSixteen"/> holds: j, 8 + j, 4 + j, 12 + j.</summary>
    internal static ReadOnlySpan<int> SixteenOrder => [0, 8, 4, 12, 1, 9, 5, 13, 2, 10, 6, 14, 3, 11, 7, 15];

    /// <summary>
    /// The lane sums of sixteen Vector512 float accumulators at once, each by <see cref="Reduce(Vector512{TF})"/>'s tree
    /// (lane i + lane i + 8, then i + 4, i + 2, i + 1): the halves of two accumulators are gathered into one register
    /// and added, level by level (15 additions and 32 shuffles instead of 16 separate trees). Lane L holds the sum of
    /// accumulator <see cref="SixteenOrder"/>[L].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> ReduceSixteen(Vector512<float> v0, Vector512<float> v1, Vector512<float> v2,
        Vector512<float> v3, Vector512<float> v4, Vector512<float> v5, Vector512<float> v6, Vector512<float> v7,
        Vector512<float> v8, Vector512<float> v9, Vector512<float> v10, Vector512<float> v11, Vector512<float> v12,
        Vector512<float> v13, Vector512<float> v14, Vector512<float> v15)
    {
        // Level 1: [a lanes 0–7 + 8–15 | b lanes 0–7 + 8–15].
        var w0 = Halves(v0, v1); var w1 = Halves(v2, v3); var w2 = Halves(v4, v5); var w3 = Halves(v6, v7);
        var w4 = Halves(v8, v9); var w5 = Halves(v10, v11); var w6 = Halves(v12, v13); var w7 = Halves(v14, v15);
        // Level 2: 128-bit block j of x_m = accumulator 4m + j's lanes i + i + 4.
        var x0 = Quarters(w0, w1); var x1 = Quarters(w2, w3); var x2 = Quarters(w4, w5); var x3 = Quarters(w6, w7);
        // Level 3: block j = [acc j: i + i + 2 (two lanes) | acc 4 + j: the same] (and 8 + j, 12 + j in y1).
        var y0 = Pairs(x0, x1); var y1 = Pairs(x2, x3);
        // Level 4: lane 0 + lane 1 of each accumulator's last two.
        var a = Avx512F.UnpackLow(y0, y1); var b = Avx512F.UnpackHigh(y0, y1);
        return Avx512F.UnpackLow(a.AsDouble(), b.AsDouble()).AsSingle()
            + Avx512F.UnpackHigh(a.AsDouble(), b.AsDouble()).AsSingle();

        static Vector512<float> Halves(Vector512<float> a, Vector512<float> b) =>
            Avx512F.Shuffle4x128(a, b, 0x44) + Avx512F.Shuffle4x128(a, b, 0xEE);
        static Vector512<float> Quarters(Vector512<float> a, Vector512<float> b) =>
            Avx512F.Shuffle4x128(a, b, 0x88) + Avx512F.Shuffle4x128(a, b, 0xDD);
        static Vector512<float> Pairs(Vector512<float> a, Vector512<float> b) =>
            Avx512F.UnpackLow(a.AsDouble(), b.AsDouble()).AsSingle() + Avx512F.UnpackHigh(a.AsDouble(), b.AsDouble()).AsSingle();
    }

    /// <summary>
    /// <see cref="LaneSums512"/> with each 64-byte lane group as two Vector256 halves (lanes 0 … L/2 − 1 and L/2 … L − 1),
    /// 2 × 2 (row, column) pairs at a time (16 vector registers): the same lane chains, and the reduction starts with
    /// lower + upper as <see cref="Reduce(Vector512{TF})"/> does, so the same bits.
    /// </summary>
    private static void LaneSums256(Span<TF> dyg, Span<TF> xg, Span<int> aRow, Span<int> bCol, int steps, Span<TF> sums)
    {
        ref TF a = ref MemoryMarshal.GetReference(dyg);
        ref TF b = ref MemoryMarshal.GetReference(xg);
        int h = Vector256<TF>.Count, l = 2 * h;
        for (int r = 0; r < aRow.Length; r++) if (aRow[r] + steps * l > dyg.Length) throw new InvalidOperationException("conv2d internal error: dY read out of range.");
        for (int t = 0; t < bCol.Length; t++) if (bCol[t] + steps * l > xg.Length) throw new InvalidOperationException("conv2d internal error: x read out of range.");
        for (int r = 0; r < aRow.Length; r += 2)
        for (int t = 0; t < bCol.Length; t += 2)
        {
            int r1 = Math.Min(r + 1, aRow.Length - 1), t1 = Math.Min(t + 1, bCol.Length - 1);
            ref TF a0 = ref Unsafe.Add(ref a, aRow[r]);
            ref TF a1 = ref Unsafe.Add(ref a, aRow[r1]);
            ref TF b0 = ref Unsafe.Add(ref b, bCol[t]);
            ref TF b1 = ref Unsafe.Add(ref b, bCol[t1]);
            Vector256<TF> c00l = default, c00h = default, c01l = default, c01h = default;
            Vector256<TF> c10l = default, c10h = default, c11l = default, c11h = default;
            for (int i = 0; i < steps; i++)
            {
                nuint e = (nuint)(i * l), f = e + (nuint)h;
                var y0l = Vector256.LoadUnsafe(ref a0, e); var y0h = Vector256.LoadUnsafe(ref a0, f);
                var y1l = Vector256.LoadUnsafe(ref a1, e); var y1h = Vector256.LoadUnsafe(ref a1, f);
                var x = Vector256.LoadUnsafe(ref b0, e);
                c00l = Fma(y0l, x, c00l); c10l = Fma(y1l, x, c10l);
                x = Vector256.LoadUnsafe(ref b0, f);
                c00h = Fma(y0h, x, c00h); c10h = Fma(y1h, x, c10h);
                x = Vector256.LoadUnsafe(ref b1, e);
                c01l = Fma(y0l, x, c01l); c11l = Fma(y1l, x, c11l);
                x = Vector256.LoadUnsafe(ref b1, f);
                c01h = Fma(y0h, x, c01h); c11h = Fma(y1h, x, c11h);
            }
            int n = bCol.Length;
            sums[r * n + t] = Reduce(c00l + c00h);
            if (t1 != t) sums[r * n + t1] = Reduce(c01l + c01h);
            if (r1 != r)
            {
                sums[r1 * n + t] = Reduce(c10l + c10h);
                if (t1 != t) sums[r1 * n + t1] = Reduce(c11l + c11h);
            }
        }
    }

    /// <summary>The tree of <see cref="Reduce(Vector512{TF})"/> from its second level (after lower + upper): the 256-bit halves, …</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TF Reduce(Vector256<TF> v256)
    {
        var v128 = v256.GetLower() + v256.GetUpper();
        if (Vector128<TF>.Count == 4)
        {
            var v64 = v128.GetLower() + v128.GetUpper();
            return v64.GetElement(0) + v64.GetElement(1);
        }
        return v128.GetElement(0) + v128.GetElement(1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<TF> Fma(Vector256<TF> x, Vector256<TF> y, Vector256<TF> acc) =>
        typeof(TF) == typeof(float)
            ? Vector256.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), acc.AsSingle()).As<float, TF>()
            : Vector256.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), acc.AsDouble()).As<double, TF>();

    /// <summary>
    /// The fixed pairwise tree over the lanes: lane i += lane i + L/2 (i &lt; L/2), then i += i + L/4, …, as the halves
    /// of the vector are added (Vector256 halves, then Vector128 halves, …).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TF Reduce(Vector512<TF> v) => Reduce(v.GetLower() + v.GetUpper());

    /// <summary>The same lane sums one lane at a time (any hardware), reduced by the same tree: identical results.</summary>
    private static void LaneSumsScalar(Span<TF> dyg, Span<TF> xg, Span<int> aRow, Span<int> bCol, int steps, int lanes, Span<TF> sums)
    {
        Span<TF> s = stackalloc TF[lanes];
        for (int r = 0; r < aRow.Length; r++)
        for (int t = 0; t < bCol.Length; t++)
        {
            var ya = dyg.Slice(aRow[r], steps * lanes);
            var xb = xg.Slice(bCol[t], steps * lanes);
            for (int l = 0; l < lanes; l++)
            {
                TF acc = TF.Zero;
                for (int i = 0; i < steps; i++) acc = TF.FusedMultiplyAdd(ya[i * lanes + l], xb[i * lanes + l], acc);
                s[l] = acc;
            }
            for (int width = lanes / 2; width >= 1; width /= 2)
                for (int i = 0; i < width; i++) s[i] += s[i + width];
            sums[r * bCol.Length + t] = s[0];
        }
    }

    /// <summary>Eq. (conv.12): dw = Σ_chunk partial[chunk], added elementwise in chunk order (image, then position chunk).</summary>
    private static void CombinePartials(TF[] target, int chunks, int wLen, int k, int cout, TF[] dwData)
    {
        int rowsPerUnit = Math.Max(1, 4096 / k);
        Compute.For(Ceil(cout, rowsPerUnit), new Combine { Target = target, DwData = dwData, Chunks = chunks, WLen = wLen, K = k, RowsPerUnit = rowsPerUnit });
    }

    /// <summary>Rows of dw: the chunk partials added in chunk order.</summary>
    private struct Combine : IForBody
    {
        public TF[] Target, DwData;
        public int Chunks, WLen, K, RowsPerUnit;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int u)
        {
            var target = Target;
            var dwData = DwData;
            int chunks = Chunks, wLen = WLen, k = K, rowsPerUnit = RowsPerUnit;
            int start = u * rowsPerUnit * k, len = Math.Min(rowsPerUnit * k, wLen - start);
            var d = dwData.AsSpan(start, len);
            target.AsSpan(start, len).CopyTo(d);
            for (int ch = 1; ch < chunks; ch++) TensorPrimitives.Add(d, target.AsSpan(ch * wLen + start, len), d);
        }
    }

    /// <summary>Eq. (conv.6): db[o] = Σ_n Σ_i Σ_j dy, sequential in (n, i, j) order, parallel over o.</summary>
    public static void BackwardBias(DenseTensor<TF> dy, DenseTensor<TF> db)
    {
        int n = dy.Dim(0), o = dy.Dim(1), plane = dy.Dim(2) * dy.Dim(3);
        var dyData = dy.Data;
        var dbData = db.Data;
        Compute.For(o, new BiasSums { DyData = dyData, DbData = dbData, N = n, O = o, Plane = plane });
    }


    /// <summary>A loop body as a struct (no closure: a warm call allocates nothing).</summary>
    private struct PackedWeightGradUnit : IForBody
    {
        public Conv2dGeometry G;
        public SimdPath Path;
        public int[] PackedOff;
        public TF[] XData;
        public TF[] DyData;
        public TF[] Target;
        public TF[] APacked;
        public int ABlock;
        public Im2Col Geo;
        public int Nr;
        public int P;
        public int H;
        public int W;
        public int Og;
        public int Ig;
        public int K;
        public int RcMax;
        public int ChunksPerImage;
        public int Chunks;
        public int MTilesG;
        public int McTiles;
        public int MBlocks;
        public int KBlocks;
        public int WLen;

        /// <summary>Block (group, chunk, row block): its group, chunk, image, first position, positions, first tile, tiles.</summary>
        public readonly (int Grp, int Ch, int Img, int Pos0, int Rc, int T0, int Tiles) Block(int block)
        {
            int mb = block % MBlocks, rest = block / MBlocks;
            int ch = rest % Chunks, grp = rest / Chunks;
            int pos0 = ch % ChunksPerImage * RcMax, t0 = mb * McTiles;
            return (grp, ch, ch / ChunksPerImage, pos0, Math.Min(RcMax, P - pos0), t0, Math.Min(McTiles, MTilesG - t0));
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int u)
        {
            var g = G;
            var path = Path;
            var packedOff = PackedOff;
            var geo = Geo;
            TF[] xData = XData, dyData = DyData, target = Target;
            int nr = Nr, p = P, h = H, w = W, og = Og, ig = Ig, k = K, rcMax = RcMax, chunksPerImage = ChunksPerImage, chunks = Chunks;
            int mTilesG = MTilesG, mcTiles = McTiles, mBlocks = MBlocks, kBlocks = KBlocks, wLen = WLen;
            int kb = u % kBlocks, block = u / kBlocks;
            var (grp, ch, img, pos0, rc, t0, tiles) = Block(block);
            int k0 = kb * Conv2dTuning.NCW, ncols = Math.Min(Conv2dTuning.NCW, k - k0);
            int panels = Ceil(ncols, nr), ldc = panels * nr;
            // A = dY_g rows, packed [tile][position][MR] by PackedDyUnit.
            var apack = APacked.AsSpan(block * ABlock, tiles * rc * MR);
            // B = im2colᵀ [position][column k], packed [panel][position][NR].
            var xg = xData.AsSpan((img * g.InChannels + grp * ig) * h * w, ig * h * w);
            var bbuf = PackIm2ColT(geo, xg, k0, ncols, pos0, rc, nr, panels, out int panelStride);
            var part = target.AsSpan(chunks == 1 ? 0 : ch * wLen, wLen);
            // Whole panels and tiles (every column and row computed is one of this unit's): the products go straight
            // into the weight gradient's rows (6–7 % faster at 14 × 14); otherwise into a scratch tile, then the valid
            // part is copied. Either starts from +0 in the first block: the same chains.
            bool direct = ncols == ldc && (t0 + tiles) * MR <= og;
            var c = direct ? part[((grp * og + t0 * MR) * k + k0)..]
                : Grow(ref t_c, tiles * MR * ldc).AsSpan(0, tiles * MR * ldc);
            for (int q0 = 0; q0 < rc; q0 += Conv2dTuning.KC)
            {
                int kc = Math.Min(Conv2dTuning.KC, rc - q0);
                Macro(path, apack[(q0 * MR)..], 1, PackedAOffsets().AsSpan(0, kc), rc * MR, tiles, bbuf.AsSpan(q0 * nr),
                    panelStride, panels, packedOff.AsSpan(0, kc), c, direct ? k : ldc, zero: q0 == 0);
            }
            if (direct) return;
            for (int r = 0; r < tiles * MR; r++)
            {
                int o = t0 * MR + r;
                if (o >= og) break;
                c.Slice(r * ldc, ncols).CopyTo(part.Slice((grp * og + o) * k + k0, ncols));
            }
        }
    }

    /// <summary>
    /// B of <see cref="PackedWeightGradUnit"/>: im2col rows k0 … k0 + ncols − 1 at positions pos0 … pos0 + rc − 1, as
    /// micro-panels [panel][position][nr] (columns past ncols zero), <paramref name="panelStride"/> apart. On Vector512
    /// float, 32 rows at a time are read into [32][rc rounded up to 16] and transposed in registers, 16 × 16 at a time
    /// (the rounded-up positions hold zeros and are never read; at 14 × 14 the weight gradient ran 12 % faster than
    /// with the rows scattered one element at a time, which the other paths still do). Data movement only.
    /// </summary>
    private static TF[] PackIm2ColT(Im2Col geo, ReadOnlySpan<TF> xg, int k0, int ncols, int pos0, int rc, int nr, int panels,
        out int panelStride)
    {
        if (typeof(TF) == typeof(float) && nr == 32 && SimdWidth.Avx512Forms)
        {
            int rcPad = Ceil(rc, 16) * 16;
            panelStride = rcPad * nr;
            var b = Grow(ref t_b, (long)panels * panelStride);
            var rows = Grow(ref t_row, 32L * rcPad);
            for (int jp = 0; jp < panels; jp++)
            {
                for (int lane = 0; lane < 32; lane++)
                {
                    var r = rows.AsSpan(lane * rcPad, rcPad);
                    int t = jp * 32 + lane;
                    if (t < ncols) geo.Segment(xg, k0 + t, pos0, rc, r[..rc]);
                    else r[..rc].Clear();
                    r[rc..].Clear();
                }
                ref float src = ref Unsafe.As<TF, float>(ref rows[0]);
                ref float dst = ref Unsafe.As<TF, float>(ref b[jp * panelStride]);
                for (int q = 0; q < rcPad; q += 16)
                {
                    Transpose16(ref Unsafe.Add(ref src, q), rcPad, ref Unsafe.Add(ref dst, q * 32), 32);
                    Transpose16(ref Unsafe.Add(ref src, 16 * rcPad + q), rcPad, ref Unsafe.Add(ref dst, q * 32 + 16), 32);
                }
            }
            return b;
        }
        panelStride = rc * nr;
        var bbuf = Grow(ref t_b, (long)panels * panelStride);
        var row = Grow(ref t_row, rc).AsSpan(0, rc);
        for (int t = 0; t < panels * nr; t++)
        {
            var dst = bbuf.AsSpan(t / nr * panelStride + t % nr);
            if (t >= ncols) { for (int kk = 0; kk < rc; kk++) dst[kk * nr] = TF.Zero; continue; }
            geo.Segment(xg, k0 + t, pos0, rc, row);
            for (int kk = 0; kk < rc; kk++) dst[kk * nr] = row[kk];
        }
        return bbuf;
    }

    /// <summary>
    /// The dY rows of <see cref="PackedWeightGradUnit"/> block (group, chunk, row block) u, packed [tile][position][MR]
    /// (rows past O/G zero) into APacked at u·ABlock.
    /// </summary>
    private struct PackedDyUnit : IForBody
    {
        public PackedWeightGradUnit Unit;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int block)
        {
            var g = Unit.G;
            int p = Unit.P, og = Unit.Og;
            var (grp, _, img, pos0, rc, t0, tiles) = Unit.Block(block);
            var apack = Unit.APacked.AsSpan(block * Unit.ABlock, tiles * rc * MR);
            var dyg = Unit.DyData.AsSpan((img * g.OutChannels + grp * og) * p, og * p);
            for (int t = 0; t < tiles; t++)
            for (int r = 0; r < MR; r++)
            {
                int o = (t0 + t) * MR + r;
                var dst = apack[(t * rc * MR)..];
                if (o >= og) { for (int kk = 0; kk < rc; kk++) dst[kk * MR + r] = TF.Zero; continue; }
                var src = dyg.Slice(o * p + pos0, rc);
                for (int kk = 0; kk < rc; kk++) dst[kk * MR + r] = src[kk];
            }
        }
    }

    /// <summary>A loop body as a struct (no closure: a warm call allocates nothing).</summary>
    private struct BiasSums : IForBody
    {
        public TF[] DyData;
        public TF[] DbData;
        public int N;
        public int O;
        public int Plane;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int c)
        {
            TF[] dyData = DyData, dbData = DbData;
            int n = N, o = O, plane = Plane;
            TF acc = TF.Zero;
            for (int b = 0; b < n; b++)
            {
                var s = dyData.AsSpan((b * o + c) * plane, plane);
                for (int i = 0; i < s.Length; i++) acc += s[i];
            }
            dbData[c] = acc;
        }
    }
}
