using System.Numerics.Tensors;
using System.Runtime.Intrinsics.X86;
using Attention.Reference.Kernels;

namespace Attention.Reference.Kernels.Conv;

/// <summary>The input gradient, Eqs. (conv.9)–(conv.10) and (conv.14): stride-1 direct, phases and packed col2im.</summary>
internal static partial class Conv2dFast<TF>
{
    // ---------------------------------------------------------------- input gradient, Eqs. (conv.9)–(conv.10)

    /// <summary>
    /// Stride 1 (and padding ≤ d·(k − 1)): the input gradient as a forward convolution, Eq. (conv.9), of dy with the
    /// flipped, channel-transposed kernel w'[c, o, p, q] = w[o, c, kh−1−p, kw−1−q] and padding d·(k − 1) − pad. The
    /// flipped kernel is never built: its element (row c, column (o, t)) is read in place at
    /// w[((g·O/G + o)·I/G + c)·kh·kw + kh·kw − 1 − t], i.e. row stride kh·kw and column offsets o·(I/G)·kh·kw + kh·kw − 1 − t.
    /// </summary>
    private static string BackwardInputDirect(DenseTensor<TF> dy, DenseTensor<TF> weight, Conv2dGeometry g, DenseTensor<TF> dx, int padH, int padW)
    {
        int og = g.OutPerGroup, ig = g.InPerGroup, khkw = g.Kernel.H * g.Kernel.W, kt = og * khkw;
        var aoff = Grow(ref t_aoff, kt);
        for (int o = 0; o < og; o++)
        for (int t = 0; t < khkw; t++)
            aoff[o * khkw + t] = o * ig * khkw + khkw - 1 - t;
        var gt = new Conv2dGeometry(g.OutChannels, g.InChannels, g.Kernel, (1, 1), (padH, padW), g.Dilation, g.Groups);
        return ForwardDirect(dy.Data, dy.Dim(0), dy.Dim(2), dy.Dim(3), weight.Data, khkw, aoff, og * ig * khkw, null, gt, dx.Data, dx.Dim(2), dx.Dim(3));
    }

    private static int FloorDiv(int a, int b) => a >= 0 ? a / b : -((-a + b - 1) / b);

    /// <summary>
    /// Any stride, Eq. (conv.14) (the phases of Eq. (conv.4), without col2im): the rows h of x with (h + ph) mod sh = ρ receive only the taps
    /// p with p·dh ≡ ρ (mod sh), from dy row i = u − m_p where h = sh·u + ρ − ph and m_p = (p·dh − ρ)/sh (columns alike).
    /// Each of the sh·sw phases (ρ, σ) is therefore a stride-1 correlation of the zero-padded dy with the sub-kernel
    /// (o, p ∈ P_ρ, q ∈ Q_σ), run by the direct kernel with A read in place; its results are scattered with strides
    /// (sh, sw). Each dx element is one FMA chain over (o, p, q) increasing (its taps only); elements no tap reaches are 0.
    /// </summary>
    private static void BackwardInputPhased(DenseTensor<TF> dy, DenseTensor<TF> weight, Conv2dGeometry g, DenseTensor<TF> dx)
    {
        int n = dy.Dim(0), ho = dy.Dim(2), wo = dy.Dim(3), h = dx.Dim(2), w = dx.Dim(3);
        int sh = g.Stride.H, sw = g.Stride.W, ph = g.Padding.H, pw = g.Padding.W, dh = g.Dilation.H, dwl = g.Dilation.W;
        int kh = g.Kernel.H, kw = g.Kernel.W, khkw = kh * kw, og = g.OutPerGroup, ig = g.InPerGroup, cout = g.OutChannels;
        Array.Clear(dx.Data);
        // One zero-padded copy of dy serves every phase: top/left pads cover the largest tap shift, bottom/right the
        // furthest read of any phase.
        int top = (kh - 1) * dh / sh, left = (kw - 1) * dwl / sw;
        int rowsNeeded = ho, colsNeeded = wo;
        // Phase (ρ, σ) reads dy rows up to u1 − 1 (u1 = ⌈(H + ph − ρ) / sh⌉) and columns up to v1 − 1.
        for (int rho = 0; rho < sh; rho++) rowsNeeded = Math.Max(rowsNeeded, FloorDiv(h + ph - rho + sh - 1, sh));
        for (int sig = 0; sig < sw; sig++) colsNeeded = Math.Max(colsNeeded, FloorDiv(w + pw - sig + sw - 1, sw));
        int hd = top + rowsNeeded, wd = Math.Max(left + colsNeeded, 1);
        int nr = Nr(Conv2dTuning.Path);
        int plane = hd * wd, perLine = 64 / Unsafe.SizeOf<TF>(), lines = Ceil(plane, perLine);
        if (lines % 2 == 0) lines++;
        int cs = lines * perLine;
        int slack = Ceil(Conv2dTuning.NC, nr) * nr + 2 * nr + wd;
        var dpad = Grow(ref t_xpad, (long)n * cout * cs + slack);
        dpad.AsSpan(n * cout * cs, slack).Clear();
        var dyData = dy.Data;
        Compute.For(n * cout, new PadPlanes { Dpad = dpad, DyData = dyData, Cs = cs, Ho = ho, Wo = wo, Top = top, Wd = wd, Left = left });
        for (int rho = 0; rho < sh; rho++)
        for (int sig = 0; sig < sw; sig++)
        {
            int u0 = FloorDiv(ph - rho + sh - 1, sh), u1 = FloorDiv(h + ph - rho + sh - 1, sh);
            int v0 = FloorDiv(pw - sig + sw - 1, sw), v1 = FloorDiv(w + pw - sig + sw - 1, sw);
            int hu = u1 - u0, hv = v1 - v0;
            if (hu <= 0 || hv <= 0) continue;
            int np = 0, nq = 0;
            for (int p = 0; p < kh; p++) if (p * dh % sh == rho) np++;
            for (int q = 0; q < kw; q++) if (q * dwl % sw == sig) nq++;
            if (np == 0 || nq == 0) continue; // no tap reaches these positions: they stay 0
            int k = og * np * nq;
            var off = Grow(ref t_off, k);
            var aoff = Grow(ref t_aoff, k);
            int kk = 0;
            for (int o = 0; o < og; o++)
            for (int p = 0; p < kh; p++)
            {
                if (p * dh % sh != rho) continue;
                int mp = (p * dh - rho) / sh;
                for (int q = 0; q < kw; q++)
                {
                    if (q * dwl % sw != sig) continue;
                    int nq2 = (q * dwl - sig) / sw;
                    off[kk] = o * cs + (top + u0 - mp) * wd + (left + v0 - nq2);
                    aoff[kk] = o * ig * khkw + p * kw + q;
                    kk++;
                }
            }
            var src = new DirectInput(dpad, cout * cs, og * cs, off, k);
            var a = new DirectA(weight.Data, khkw, aoff, og * ig * khkw);
            var dst = new DirectOutput(dx.Data, g.InChannels * h * w, h * w, (sh * u0 + rho - ph) * w + (sw * v0 + sig - pw), sh * w, sw);
            DirectCore(src, a, null, g.Groups, ig, n, hu, wd, hv, dst);
        }
    }

    /// <summary>dx from dy into a preallocated dx.</summary>
    public static void BackwardInput(DenseTensor<TF> dy, DenseTensor<TF> weight, Conv2dGeometry g, DenseTensor<TF> dx)
    {
        if (dx.Length == 0) return;
        if (dy.Length == 0)
        {
            Array.Clear(dx.Data); // no output reads any input: the gradient is zero
            return;
        }
        var path = Conv2dTuning.Path;
        void Report(string algorithm) => ConvDispatch.Report("input gradient", algorithm, path, g, dx.Dim(0), dx.Dim(2), dx.Dim(3));
        if (ConvDispatch.Depthwise(g))
        {
            DepthwiseConv2dFast<TF>.BackwardInput(dy, weight, g, dx);
            Report("depthwise");
            return;
        }
        int padH = g.Dilation.H * (g.Kernel.H - 1) - g.Padding.H, padW = g.Dilation.W * (g.Kernel.W - 1) - g.Padding.W;
        if (g.Stride == (1, 1) && padH >= 0 && padW >= 0)
        {
            string direct = BackwardInputDirect(dy, weight, g, dx, padH, padW);
            if (ConvDispatch.Listening) Report("stride-1 direct (" + direct + ")");
            return;
        }
        if (!ConvDispatch.PackedInputGradient(g))
        {
            BackwardInputPhased(dy, weight, g, dx);
            Report("phases");
            return;
        }
        Report("packed col2im");
        int nr = Nr(path);
        var packedOff = PackedOffsets(nr);
        int n = dy.Dim(0), ho = dy.Dim(2), wo = dy.Dim(3), p = ho * wo, h = dx.Dim(2), w = dx.Dim(3);
        int groups = g.Groups, og = g.OutPerGroup, ig = g.InPerGroup, k = g.ReductionLength;
        int khkw = g.Kernel.H * g.Kernel.W;
        // All I/G channels in one block up to 4·BackInputRows Col rows (the stem's 3 × 49): each block repacks the dy
        // panels, and the column runs below keep the threads busy (docs/derivations/conv2d.md: the stem's measurement).
        int cb = ig * khkw <= 4 * Conv2dTuning.BackInputRows ? ig : Math.Clamp(Conv2dTuning.BackInputRows / khkw, 1, ig);
        int cBlocks = Ceil(ig, cb);
        int nTiles = Ceil(p, Conv2dTuning.NC);
        // Two parallel passes per image, so that the stem's three channels do not make three work units for all the
        // threads: the Col rows of every (group, channel block, run of column tiles), then col2im by (channel, band of
        // dx rows). The same products and the same (p, q) order per dx element as one pass per channel block.
        int colRuns = Math.Clamp(8 * Compute.MaxThreads / (groups * cBlocks), 1, nTiles), tilesPerRun = Ceil(nTiles, colRuns);
        colRuns = Ceil(nTiles, tilesPerRun);
        int bands = Math.Clamp(8 * Compute.MaxThreads / (groups * ig), 1, h), bandRows = Ceil(h, bands);
        bands = Ceil(h, bandRows);
        var dcol = Grow(ref t_dcolAll, (long)groups * ig * khkw * p);
        // W_gᵀ of every (group, channel block), packed once per call (not by every column run of every image).
        int aBlock = Ceil(cb * khkw, MR) * og * MR;
        var unit = new PackedInputGradUnit
        {
            G = g, Path = path, PackedOff = packedOff, WData = weight.Data, DyData = dy.Data, DxData = dx.Data, Dcol = dcol, Nr = nr,
            P = p, H = h, W = w, Ho = ho, Wo = wo, Groups = groups, Og = og, Ig = ig, K = k, Khkw = khkw, Cb = cb, CBlocks = cBlocks,
            NTiles = nTiles, TilesPerRun = tilesPerRun, ColRuns = colRuns, Bands = bands, BandRows = bandRows,
            APacked = Grow(ref t_dxA, (long)groups * cBlocks * aBlock), ABlock = aBlock,
        };
        Compute.For(groups * cBlocks, new PackedWeightsT { Unit = unit });
        for (int img = 0; img < n; img++)
        {
            unit.Img = img;
            Compute.For(groups * cBlocks * colRuns, unit);
            Compute.For(groups * ig * bands, new PackedCol2Im { Unit = unit });
        }
    }


    /// <summary>A loop body as a struct (no closure: a warm call allocates nothing).</summary>
    private struct PadPlanes : IForBody
    {
        public TF[] Dpad;
        public TF[] DyData;
        public int Cs;
        public int Ho;
        public int Wo;
        public int Top;
        public int Wd;
        public int Left;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int pl)
        {
            TF[] dpad = Dpad, dyData = DyData;
            int cs = Cs, ho = Ho, wo = Wo, top = Top, wd = Wd, left = Left;
            var d = dpad.AsSpan(pl * cs, cs);
            d.Clear();
            for (int i = 0; i < ho; i++) dyData.AsSpan((pl * ho + i) * wo, wo).CopyTo(d.Slice((top + i) * wd + left, wo));
        }
    }

    /// <summary>A loop body as a struct (no closure: a warm call allocates nothing).</summary>
    private struct PackedInputGradUnit : IForBody
    {
        public Conv2dGeometry G;
        public SimdPath Path;
        public int[] PackedOff;
        public TF[] WData, DyData, DxData, Dcol, APacked;
        public int Nr, P, H, W, Ho, Wo, Groups, Og, Ig, K, Khkw, Cb, CBlocks, NTiles, TilesPerRun, ColRuns, Bands, BandRows, Img;
        public int ABlock;

        /// <summary>Channel block cblk: its first channel, its Col rows (c, p, q) and their register tiles.</summary>
        public readonly (int C0, int M, int Tiles) Block(int cblk)
        {
            int c0 = cblk * Cb, m = Math.Min(Cb, Ig - c0) * Khkw;
            return (c0, m, Ceil(m, MR));
        }

        /// <summary>
        /// Unit (group, channel block, run of column tiles) of image Img: the Col rows (c, p, q) of the block over the
        /// run's columns, Eq. (conv.9), into Dcol [group][c·kh·kw + t][position].
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int u)
        {
            var g = G;
            var path = Path;
            var packedOff = PackedOff;
            var dyData = DyData;
            int nr = Nr, p = P, og = Og, ig = Ig, khkw = Khkw, cBlocks = CBlocks, img = Img;
            int run = u % ColRuns, block = u / ColRuns;
            int grp = block / cBlocks;
            var (c0, m, tiles) = Block(block % cBlocks);
            // A = W_gᵀ rows [c0·kh·kw, c0·kh·kw + m), packed [tile][o][MR] by PackedWeightsT.
            var apack = APacked.AsSpan(block * ABlock, tiles * og * MR);
            var dcol = Dcol.AsSpan((grp * ig + c0) * khkw * p, m * p);
            var dyg = dyData.AsSpan((img * g.OutChannels + grp * og) * p, og * p);
            int ntEnd = Math.Min(NTiles, (run + 1) * TilesPerRun);
            for (int nt = run * TilesPerRun; nt < ntEnd; nt++)
            {
                int j0 = nt * Conv2dTuning.NC, ncols = Math.Min(Conv2dTuning.NC, p - j0);
                int panels = Ceil(ncols, nr), ldc = panels * nr;
                var cbuf = Grow(ref t_c, tiles * MR * ldc).AsSpan(0, tiles * MR * ldc);
                cbuf.Clear();
                var bbuf = Grow(ref t_b, (long)Conv2dTuning.KC * ldc);
                for (int o0 = 0; o0 < og; o0 += Conv2dTuning.KC)
                {
                    int kc = Math.Min(Conv2dTuning.KC, og - o0);
                    for (int kk = 0; kk < kc; kk++)
                    for (int jp = 0; jp < panels; jp++)
                    {
                        var dst = bbuf.AsSpan(jp * kc * nr + kk * nr, nr);
                        int count = Math.Min(nr, ncols - jp * nr);
                        var from = dyg.Slice((o0 + kk) * p + j0 + jp * nr, count);
                        // Whole panels inline (a call per 32-element copy was 14 % of the stem's backward).
                        if (count == nr) Strided.CopyShort(ref MemoryMarshal.GetReference(from), ref MemoryMarshal.GetReference(dst), nr);
                        else
                        {
                            from.CopyTo(dst);
                            dst[count..].Clear();
                        }
                    }
                    Macro(path, apack[(o0 * MR)..], og * MR, tiles, bbuf, kc * nr, panels, packedOff.AsSpan(0, kc), cbuf, ldc);
                }
                for (int row = 0; row < m; row++) cbuf.Slice(row * ldc, ncols).CopyTo(dcol.Slice(row * p + j0, ncols));
            }
        }
    }

    /// <summary>
    /// W_gᵀ rows of <see cref="PackedInputGradUnit"/> block (group, channel block) u, packed [tile][o][MR] (rows past the
    /// block's Col rows zero) into APacked at u·ABlock.
    /// </summary>
    private struct PackedWeightsT : IForBody
    {
        public PackedInputGradUnit Unit;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int block)
        {
            int og = Unit.Og, k = Unit.K, khkw = Unit.Khkw, grp = block / Unit.CBlocks;
            var (c0, m, tiles) = Unit.Block(block % Unit.CBlocks);
            var wData = Unit.WData;
            var apack = Unit.APacked.AsSpan(block * Unit.ABlock, tiles * og * MR);
            for (int t = 0; t < tiles; t++)
            for (int o = 0; o < og; o++)
            for (int r = 0; r < MR; r++)
            {
                int row = t * MR + r;
                apack[(t * og + o) * MR + r] = row < m ? wData[(grp * og + o) * k + c0 * khkw + row] : TF.Zero;
            }
        }
    }

    /// <summary>
    /// col2im, Eq. (conv.10), of <see cref="PackedInputGradUnit"/>'s Col rows: unit (group, channel, band of dx rows);
    /// each dx element sums its (p, q) terms in increasing (p, q) order.
    /// </summary>
    private struct PackedCol2Im : IForBody
    {
        public PackedInputGradUnit Unit;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int u)
        {
            var g = Unit.G;
            int p = Unit.P, h = Unit.H, w = Unit.W, ho = Unit.Ho, wo = Unit.Wo, ig = Unit.Ig, khkw = Unit.Khkw, img = Unit.Img;
            int band = u % Unit.Bands, rest = u / Unit.Bands;
            int c = rest % ig, grp = rest / ig;
            int ih0 = band * Unit.BandRows, ih1 = Math.Min(h, ih0 + Unit.BandRows);
            var plane = Unit.DxData.AsSpan((img * g.InChannels + grp * ig + c) * h * w, h * w);
            plane[(ih0 * w)..(ih1 * w)].Clear();
            for (int pp = 0; pp < g.Kernel.H; pp++)
            for (int qq = 0; qq < g.Kernel.W; qq++)
            {
                var src = Unit.Dcol.AsSpan(((grp * ig + c) * khkw + pp * g.Kernel.W + qq) * p, p);
                int rowOff = pp * g.Dilation.H - g.Padding.H, colOff = qq * g.Dilation.W - g.Padding.W;
                // Output rows oh with ih = oh·sh + rowOff in [ih0, ih1).
                int oh0 = Math.Max(0, Ceil(ih0 - rowOff, g.Stride.H)), oh1 = Math.Min(ho, Ceil(ih1 - rowOff, g.Stride.H));
                for (int oh = oh0; oh < oh1; oh++)
                {
                    int ih = oh * g.Stride.H + rowOff;
                    var dRow = plane.Slice(ih * w, w);
                    var sRow = src.Slice(oh * wo, wo);
                    if (g.Stride.W == 1)
                    {
                        int lo = Math.Clamp(-colOff, 0, wo), hi = Math.Clamp(w - colOff, lo, wo);
                        if (hi > lo)
                        {
                            var d = dRow.Slice(colOff + lo, hi - lo);
                            TensorPrimitives.Add(d, sRow.Slice(lo, hi - lo), d);
                        }
                    }
                    else if (g.Stride.W == 2)
                    {
                        // Columns iw = 2·ow + colOff inside the row: ow from ⌈−colOff / 2⌉ up to ⌊(w − 1 − colOff) / 2⌋.
                        int lo = Math.Clamp((1 - colOff) / 2, 0, wo), hi = Math.Clamp(FloorDiv(w - 1 - colOff, 2) + 1, lo, wo);
                        Strided.AddStride2<TF>(sRow[lo..hi], dRow, 2 * lo + colOff);
                    }
                    else
                    {
                        for (int ow = 0; ow < wo; ow++)
                        {
                            int iw = ow * g.Stride.W + colOff;
                            if ((uint)iw < (uint)w) dRow[iw] += sRow[ow];
                        }
                    }
                }
            }
        }
    }
}
