using System.Numerics.Tensors;
using System.Runtime.Intrinsics.X86;
using Attention.Reference.Kernels;

namespace Attention.Reference.Kernels.Conv;

/// <summary>
/// Blocking constants of the fast conv2d kernels. Tile shapes never change any result: every output element is
/// accumulated by one fused multiply-add chain in a fixed index order that no tile boundary interrupts (a chunk
/// boundary reloads the running sum and continues it). Only <see cref="WeightGradChunk"/> defines a summation order
/// (Eq. (conv.12)), and it is a constant.
/// </summary>
internal static class Conv2dTuning
{
    /// <summary>Rows of the register tile (broadcast operands).</summary>
    public const int MR = 8;

    /// <summary>Reduction indices per packed chunk (keeps a packed B micro-panel in L1).</summary>
    public const int KC = 128;

    /// <summary>Work units of at most this many micro-panels run the whole reduction per tile instead of KC chunks.</summary>
    public const int FullKPanels = 2;

    /// <summary>Rows per parallel work unit.</summary>
    public const int MC = 64;

    /// <summary>Columns per parallel work unit (forward and input gradient).</summary>
    public const int NC = 128;

    /// <summary>Columns (reduction indices of the forward) per weight-gradient work unit.</summary>
    public const int NCW = 128;

    /// <summary>Spatial positions of one image per weight-gradient partial sum: fixes the summation order of Eq. (conv.12).</summary>
    public const int WeightGradChunk = 256;

    /// <summary>
    /// Grid positions of one image per partial sum of the direct weight gradient (a multiple of 16): fixes
    /// the summation order of Eq. (conv.12).
    /// </summary>
    public const int WeightGradChunkDirect = 1024;

    /// <summary>Target number of im2col rows per input-gradient work unit.</summary>
    public const int BackInputRows = 64;

    /// <summary>Forbids (false) reading a 1×1 stride-1 unpadded input in place (<see cref="KernelChoices.PointwiseInPlace"/>).</summary>
    public static bool? PointwiseInPlace { get => SimdWidth.Choices.PointwiseInPlace; set => SimdWidth.Choices = SimdWidth.Choices with { PointwiseInPlace = value }; }

    /// <summary>Forces or forbids the row kernel (<see cref="KernelChoices.RowKernel"/>).</summary>
    public static bool? RowKernel { get => SimdWidth.Choices.RowKernel; set => SimdWidth.Choices = SimdWidth.Choices with { RowKernel = value }; }

    /// <summary>Forbids the depthwise kernels (<see cref="KernelChoices.Depthwise"/>).</summary>
    public static bool? Depthwise { get => SimdWidth.Choices.Depthwise; set => SimdWidth.Choices = SimdWidth.Choices with { Depthwise = value }; }

    /// <summary>Forces or forbids the depthwise forward's channels-in-lanes form (<see cref="KernelChoices.DepthwiseLanes"/>).</summary>
    public static bool? DepthwiseLanes
    {
        get => SimdWidth.Choices.DepthwiseLanes;
        set => SimdWidth.Choices = SimdWidth.Choices with { DepthwiseLanes = value };
    }

    /// <summary>Chooses the strided input gradient (<see cref="KernelChoices.PackedInputGradient"/>).</summary>
    public static bool? PackedInputGradient
    {
        get => SimdWidth.Choices.PackedInputGradient;
        set => SimdWidth.Choices = SimdWidth.Choices with { PackedInputGradient = value };
    }

    /// <summary>Forces the packed-im2col forward (<see cref="KernelChoices.PackedForward"/>).</summary>
    public static bool? PackedForward { get => SimdWidth.Choices.PackedForward; set => SimdWidth.Choices = SimdWidth.Choices with { PackedForward = value }; }

    /// <summary>Forces or forbids the direct weight gradient (<see cref="KernelChoices.DirectWeightGradient"/>).</summary>
    public static bool? DirectWeightGradient
    {
        get => SimdWidth.Choices.DirectWeightGradient;
        set => SimdWidth.Choices = SimdWidth.Choices with { DirectWeightGradient = value };
    }

    /// <summary>The vector path in use: <see cref="SimdWidth.Path"/>, the one switch of every fast kernel.</summary>
    public static SimdPath Path => SimdWidth.Path;
}

/// <summary>
/// The fast kernels: implicit im2col packed into micro-panels, a register-blocked MR × NR micro-kernel
/// (NR = two vectors) with fused multiply-add, parallel over independent output tiles via <see cref="Compute.For"/>.
/// See docs/derivations/conv2d.md, Eqs. (conv.7)–(conv.12), for the GEMM forms and summation orders.
/// </summary>
internal static partial class Conv2dFast<TF> where TF : unmanaged, IFloatingPointIeee754<TF>
{
    private const int MR = Conv2dTuning.MR;

    [ThreadStatic] private static TF[]? t_apack;     // caller: packed weights (forward)
    [ThreadStatic] private static TF[]? t_partials;  // caller: weight-gradient partial sums
    [ThreadStatic] private static TF[]? t_b;         // worker: packed B chunk
    [ThreadStatic] private static TF[]? t_c;         // worker: C tile of one unit
    [ThreadStatic] private static TF[]? t_bias;      // worker: the bias of the unit's rows
    [ThreadStatic] private static TF[]? t_dxA;       // caller: the packed input gradient's packed W_gᵀ blocks
    [ThreadStatic] private static TF[]? t_dwA;       // caller: the packed weight gradient's packed dY rows
    [ThreadStatic] private static TF[]? t_dcolAll;   // caller: the packed input gradient's Col rows, all groups of an image
    [ThreadStatic] private static TF[]? t_row;       // worker: one im2col row (32 of them for PackIm2ColT)
    [ThreadStatic] private static TF[]? t_xpad;      // caller: phase-split zero-padded input (direct kernels)
    [ThreadStatic] private static int[]? t_off;      // caller: im2col row offsets into the padded input
    [ThreadStatic] private static int[]? t_aoff;     // caller: column offsets of A read in place
    [ThreadStatic] private static TF[]? t_partialA;  // caller: packed partial A tiles of every group
    [ThreadStatic] private static TF[]? t_dypad;     // caller: dY on the output grid (direct weight gradient)

    private static readonly int[]?[] s_packedOffsets = new int[3][];

    /// <summary>Offsets kk·NR of the rows of a packed B micro-panel.</summary>
    private static int[] PackedOffsets(int nr)
    {
        int slot = nr == 2 * Vector512<TF>.Count ? 0 : nr == 2 * Vector256<TF>.Count ? 1 : 2;
        var table = s_packedOffsets[slot];
        if (table is null || table.Length < Conv2dTuning.KC * 2 || table[1] != nr)
        {
            table = new int[Conv2dTuning.KC * 2];
            for (int i = 0; i < table.Length; i++) table[i] = i * nr;
            s_packedOffsets[slot] = table;
        }
        return table;
    }

    private static int[]? s_packedAOffsets;

    /// <summary>Offsets kk·MR of the columns of a packed A tile, for kk &lt; max(2·KC, <paramref name="length"/>).</summary>
    private static int[] PackedAOffsets(int length = 0)
    {
        var table = s_packedAOffsets;
        if (table is null || table.Length < length)
        {
            table = new int[Math.Max(Conv2dTuning.KC * 2, length)];
            for (int i = 0; i < table.Length; i++) table[i] = i * MR;
            s_packedAOffsets = table; // immutable once published; a racing caller may build its own copy
        }
        return table;
    }

    private static int[] Grow(ref int[]? buffer, int length)
    {
        if (buffer is null || buffer.Length < length) buffer = new int[length];
        return buffer;
    }

    private static TF[] Grow(ref TF[]? buffer, long length)
    {
        if (length > Array.MaxLength) throw new InvalidOperationException($"conv2d workspace of {length} elements is too large.");
        if (buffer is null || buffer.Length < length) buffer = new TF[length];
        return buffer;
    }

    private static int Nr(SimdPath path) => ConvDispatch.Nr<TF>(path);

    private static int Ceil(int a, int b) => (a + b - 1) / b;

    // ---------------------------------------------------------------- forward, Eqs. (conv.7)–(conv.8)

    /// <summary>y = conv(x, w) + b into a preallocated y.</summary>
    public static void Forward(DenseTensor<TF> x, DenseTensor<TF> weight, DenseTensor<TF>? bias, Conv2dGeometry g, DenseTensor<TF> y,
        IConvEpilogue<TF>? epilogue = null, ConvWeightPack? pack = null)
    {
        if (y.Length == 0) return; // a zero-sized batch (or output plane): nothing to compute
        string algorithm;
        if (ConvDispatch.Depthwise(g))
        {
            bool lanes = ConvDispatch.DepthwiseLanes<TF>(g, y.Dim(2), y.Dim(3));
            if (lanes) DepthwiseConv2dFast<TF>.ForwardLanes(x, weight, bias, g, y, epilogue);
            else DepthwiseConv2dFast<TF>.Forward(x, weight, bias, g, y, epilogue);
            algorithm = lanes ? "depthwise, channels in lanes" : "depthwise";
        }
        else if (!ConvDispatch.PackedForward)
            algorithm = ForwardDirect(x.Data, x.Dim(0), x.Dim(2), x.Dim(3), weight.Data, bias?.Data, g, y.Data, y.Dim(2), y.Dim(3), epilogue, pack);
        else
        {
            ForwardPacked(x.Data, x.Dim(0), x.Dim(2), x.Dim(3), weight.Data, bias?.Data, g, y.Data, y.Dim(2), y.Dim(3));
            epilogue?.Apply(y.Data);
            algorithm = "packed im2col";
        }
        ConvDispatch.Report("forward", algorithm, Conv2dTuning.Path, g, x.Dim(0), x.Dim(2), x.Dim(3));
    }

    /// <summary>Packs W_g of every group into MR-row panels [group][tile][k][MR] (rows past O/G are zero).</summary>
    private static TF[] PackWeights(TF[] wData, Conv2dGeometry g, int mTilesG)
    {
        int og = g.OutPerGroup, k = g.ReductionLength;
        var apack = Grow(ref t_apack, (long)g.Groups * mTilesG * k * MR);
        Compute.For(g.Groups * mTilesG, idx =>
        {
            int grp = idx / mTilesG, t = idx % mTilesG;
            var dst = apack.AsSpan(idx * k * MR, k * MR);
            for (int r = 0; r < MR; r++)
            {
                int o = t * MR + r;
                if (o >= og) { for (int kk = 0; kk < k; kk++) dst[kk * MR + r] = TF.Zero; continue; }
                var src = wData.AsSpan((grp * og + o) * k, k);
                for (int kk = 0; kk < k; kk++) dst[kk * MR + r] = src[kk];
            }
        });
        return apack;
    }

    /// <summary>
    /// The zero-padded input split into stride phases, Eq. (conv.8): for each channel, sh·sw planes of Hq × Wq
    /// (Hq = ⌈Hp / sh⌉, Wq = ⌈Wp / sw⌉), phase (a, b) holding padded rows a, a + sh, … and columns b, b + sw, …; for
    /// stride 1 this is just the padded input; an unpadded 1×1 kernel gets phase (0, 0) only (the one it reads).
    /// Followed by <paramref name="slack"/> zeros. Returns the buffer, the phase-plane width Wq (the grid width) and the
    /// per-channel stride: the phases' Hq·Wq each, rounded up to an odd number of cache lines; <paramref name="banded"/>:
    /// the planes were written in bands of rows, top band first (thread t wrote about the t-th share of the rows).
    /// </summary>
    private static TF[] PhaseInput(TF[] xData, int n, Conv2dGeometry g, int h, int w, int slack, out int wq, out int chanStride,
        out bool banded)
    {
        int cin = g.InChannels, sh = g.Stride.H, sw = g.Stride.W, ph = g.Padding.H, pw = g.Padding.W;
        // A 1×1 unpadded kernel reads phase (0, 0) only (every tap offset is in it): the strided 1×1 projection
        // shortcuts of ResNets copy a quarter of their input instead of all four phases.
        int phases = g.Kernel == (1, 1) && g.Padding == (0, 0) ? 1 : sh * sw;
        int hq = Ceil(h + 2 * ph, sh), wqq = Ceil(w + 2 * pw, sw), plane = hq * wqq, cs = phases * plane;
        // Pad the channel stride to an odd number of 64-byte lines, so that the rows one micro-panel reads from
        // consecutive channels spread over all L1 sets instead of thrashing a few.
        int perLine = 64 / Unsafe.SizeOf<TF>(), lines = Ceil(cs, perLine);
        if (lines % 2 == 0) lines++;
        cs = lines * perLine;
        wq = wqq;
        chanStride = cs;
        var xpad = Grow(ref t_xpad, (long)n * cin * cs + slack);
        xpad.AsSpan(n * cin * cs, slack).Clear();
        var layout = new Phases(h, w, sh, sw, ph, pw, hq, wqq);
        // Strided layouts with few channels (the stem's 3) are written in bands of rows, so that every thread has a
        // share: by channels, one of two threads wrote two of the stem's three (62 µs of a 0.95 ms call).
        int bands = phases > 1 ? Math.Clamp(8 * Compute.MaxThreads / (n * cin), 1, hq) : 1;
        Compute.For(n * cin * bands, new PhaseFill
        {
            X = xData, XPad = xpad, Layout = layout, Cs = cs, Phases = phases, Planes = n * cin, Bands = bands,
            BandRows = Ceil(hq, bands),
        });
        banded = bands > 1;
        return xpad;
    }

    /// <summary>
    /// One channel of the phase-split input (PhaseInput), or one band of its rows: zero-padded and split into its stride phases.
    /// Band-major (all channels' top band first), so that a thread's share of the loop is a band of rows that the
    /// same thread's share of a position-major loop then reads.
    /// </summary>
    private struct PhaseFill : IForBody
    {
        public TF[] X, XPad;
        public Phases Layout;
        public int Cs, Phases, Planes, Bands, BandRows;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int idx)
        {
            int nc0 = idx % Planes, band = idx / Planes;
            int size = Layout.H * Layout.W, total = Phases * Layout.Plane;
            var src = X.AsSpan(nc0 * size, size);
            var dst = XPad.AsSpan(nc0 * Cs, total);
            if (band == 0) XPad.AsSpan(nc0 * Cs + total, Cs - total).Clear();
            if (Bands == 1) Layout.Fill<TF>(src, dst, Phases);
            else Layout.FillRows<TF>(src, dst, Phases, band * BandRows, Math.Min(Layout.Hq, (band + 1) * BandRows));
        }
    }

    /// <summary>
    /// Eq. (conv.8): im2col row offsets into the phase-split padded input of one group:
    /// k = (c, p, q) → plane (c, (p·dh) mod sh, (q·dw) mod sw), shifted by ⌊p·dh / sh⌋ rows and ⌊q·dw / sw⌋ columns.
    /// </summary>
    private static int[] PhaseOffsets(Conv2dGeometry g, int h, int wq, int chanStride)
    {
        int k = g.ReductionLength, kh = g.Kernel.H, kw = g.Kernel.W, khkw = kh * kw, sh = g.Stride.H, sw = g.Stride.W;
        int plane = Ceil(h + 2 * g.Padding.H, sh) * wq;
        var off = Grow(ref t_off, k);
        // The kh·kw tap offsets once, then + c·chanStride per channel (six integer divisions per element cost 40 µs of
        // a 0.9 ms 3x3 256→256 @14 call, on the caller alone while the other threads waited).
        for (int p = 0; p < kh; p++)
        for (int q = 0; q < kw; q++)
        {
            int rh = p * g.Dilation.H, rw = q * g.Dilation.W;
            off[p * kw + q] = (rh % sh * sw + rw % sw) * plane + rh / sh * wq + rw / sw;
        }
        for (int c = 1, at = khkw; at < k; c++, at += khkw)
        for (int t = 0; t < khkw; t++)
            off[at + t] = off[t] + c * chanStride;
        return off;
    }

    /// <summary>
    /// Any stride: the implicit GEMM over the phase-split zero-padded input with the output computed on the grid
    /// Ho × Wq (columns ow ≥ Wo discarded), so im2col row k = (c, p, q) is that buffer shifted by off(k) and B needs
    /// no packing; the weights are read in place (row stride K), Eq. (conv.8).
    /// </summary>
    private static string ForwardDirect(TF[] xData, int n, int h, int w, TF[] wData, TF[]? bData, Conv2dGeometry g, TF[] yData, int ho, int wo,
        IConvEpilogue<TF>? epilogue, ConvWeightPack? pack)
    {
        // A = the weights in place: row o of group g at (g·O/G + o)·K, column kk at + kk.
        int k = g.ReductionLength;
        var identity = Grow(ref t_aoff, k);
        for (int i = 0; i < k; i++) identity[i] = i;
        return ForwardDirect(xData, n, h, w, wData, k, identity, g.OutPerGroup * k, bData, g, yData, ho, wo, epilogue, pack);
    }

    /// <summary>
    /// The direct forward with A element (row r of group g, column kk) at aData[g·aGroupStride + r·lda + aoff[kk]];
    /// returns the algorithm it ran (rows, pointwise in place, or grid).
    /// </summary>
    private static string ForwardDirect(TF[] xData, int n, int h, int w, TF[] aData, int lda, int[] aoff, int aGroupStride,
        TF[]? bData, Conv2dGeometry g, TF[] yData, int ho, int wo, IConvEpilogue<TF>? epilogue = null, ConvWeightPack? pack = null)
    {
        var path = Conv2dTuning.Path;
        // A unit packs its own weights fast where they are read in order (the forward: register transposes) or, in
        // float with AVX2, by hardware gathers (the input gradient's flipped taps); otherwise by a scalar loop.
        bool fastPack = IsIdentity(aoff.AsSpan(0, g.ReductionLength)) || (typeof(TF) == typeof(float) && SimdWidth.Avx2Forms);
        if (ConvDispatch.Rows<TF>(path, g.OutPerGroup, g.ReductionLength, n, ho, wo, Ceil(w + 2 * g.Padding.W, g.Stride.W), pack is not null,
                g.Kernel.H * g.Kernel.W > 1, fastPack))
        {
            ForwardRows(xData, n, h, w, new DirectA(aData, lda, aoff, aGroupStride), bData, g, yData, ho, wo, epilogue, path, pack);
            return "rows";
        }
        int nr = Nr(path);
        var a = new DirectA(aData, lda, aoff, aGroupStride);
        if (ConvDispatch.PointwiseInPlace(g))
        {
            ForwardPointwise(xData, n, h * w, a, bData, g, yData, epilogue, nr);
            return "pointwise in place";
        }
        var xpad = PhaseInput(xData, n, g, h, w, Ceil(Conv2dTuning.NC, nr) * nr + 2 * nr + (g.Kernel.W - 1) * g.Dilation.W, out int wp, out int plane, out _);
        var off = PhaseOffsets(g, h, wp, plane);
        var src = new DirectInput(xpad, g.InChannels * plane, g.InPerGroup * plane, off, g.ReductionLength);
        var dst = new DirectOutput(yData, g.OutChannels * ho * wo, ho * wo, 0, wo, 1);
        DirectCore(src, a, bData, g.Groups, g.OutPerGroup, n, ho, wp, wo, dst, epilogue);
        return "grid";
    }

    /// <summary>
    /// A 1×1 stride-1 unpadded convolution: the input is already its own im2col matrix (row kk = channel kk's plane), so
    /// the columns that fill whole micro-panels are read in place, with no copy; the last P mod NR columns of each plane
    /// are copied into a zero-padded [N·C][NR] strip and run as one more grid. The same FMA chains as the padded copy.
    /// </summary>
    private static void ForwardPointwise(TF[] xData, int n, int hw, DirectA a, TF[]? bData, Conv2dGeometry g, TF[] yData,
        IConvEpilogue<TF>? epilogue, int nr)
    {
        int k = g.ReductionLength, cin = g.InChannels, aligned = hw / nr * nr, tail = hw - aligned;
        if (aligned > 0)
        {
            var off = Grow(ref t_off, k);
            for (int kk = 0; kk < k; kk++) off[kk] = kk * hw;
            var src = new DirectInput(xData, cin * hw, g.InPerGroup * hw, off, k);
            var dst = new DirectOutput(yData, g.OutChannels * hw, hw, 0, aligned, 1);
            DirectCore(src, a, bData, g.Groups, g.OutPerGroup, n, 1, aligned, aligned, dst, epilogue);
        }
        if (tail > 0)
        {
            var strip = Grow(ref t_xpad, (long)n * cin * nr + nr);
            strip.AsSpan(0, n * cin * nr + nr).Clear();
            for (int nc = 0; nc < n * cin; nc++) xData.AsSpan(nc * hw + aligned, tail).CopyTo(strip.AsSpan(nc * nr, tail));
            var off = Grow(ref t_off, k);
            for (int kk = 0; kk < k; kk++) off[kk] = kk * nr;
            var src = new DirectInput(strip, cin * nr, g.InPerGroup * nr, off, k);
            var dst = new DirectOutput(yData, g.OutChannels * hw, hw, aligned, nr, 1);
            DirectCore(src, a, bData, g.Groups, g.OutPerGroup, n, 1, nr, tail, dst, epilogue);
        }
    }

    /// <summary>The B side of <see cref="DirectCore"/>: im2col row kk of image n, group g at data[n·imageStride + g·groupStride + off[kk]].</summary>
    private readonly record struct DirectInput(TF[] Data, int ImageStride, int GroupStride, int[] Off, int K);

    /// <summary>The A side of <see cref="DirectCore"/>: element (row r of group g, column kk) at data[g·groupStride + r·lda + aoff[kk]].</summary>
    private readonly record struct DirectA(TF[] Data, int Lda, int[] AOff, int GroupStride);

    /// <summary>Where grid element (image n, channel c, row u, column v) goes: data[n·imageStride + c·chanStride + base + u·rowStride + v·colStride].</summary>
    private readonly record struct DirectOutput(TF[] Data, int ImageStride, int ChanStride, int Base, int RowStride, int ColStride);

    /// <summary>
    /// The register-blocked product over the grid gridRows × gridWidth (columns ≥ validCols discarded), parallel over
    /// (image, group, 64 rows, 128 grid columns); each output element is one FMA chain over kk increasing, then + bias.
    /// </summary>
    private static void DirectCore(DirectInput src, DirectA a, TF[]? bData, int groups, int og, int n, int gridRows, int gridWidth,
        int validCols, DirectOutput dst, IConvEpilogue<TF>? epilogue = null)
    {
        var u = new DirectUnit
        {
            Src = src, A = a, BData = bData, Groups = groups, Og = og, GridWidth = gridWidth, ValidCols = validCols, Dst = dst,
            Epilogue = epilogue, Path = Conv2dTuning.Path,
        };
        u.Nr = Nr(u.Path);
        u.K = src.K;
        u.Grid = gridRows * gridWidth;
        u.Nc = Conv2dTuning.NC;
        u.MTilesG = Ceil(og, MR);
        u.FullTiles = og / MR;
        u.PackedAOff = PackedAOffsets(u.K);
        u.McTiles = Conv2dTuning.MC / MR;
        u.MBlocks = Ceil(u.MTilesG, u.McTiles);
        u.NTiles = Ceil(u.Grid, u.Nc);
        // A is read in place; each group's partial last tile (rows past the group's rows) is packed once,
        // [kk][MR] with zero rows, before the parallel loop.
        if (u.FullTiles < u.MTilesG)
        {
            u.PartialAll = Grow(ref t_partialA, (long)groups * MR * u.K);
            Compute.For(groups, new PartialA { A = a, Partial = u.PartialAll, K = u.K, FullTiles = u.FullTiles, Og = og });
        }
        Compute.For(n * groups * u.MBlocks * u.NTiles, u);
    }

    /// <summary>Packs one group's partial last tile of A, [kk][MR] with zero rows.</summary>
    private struct PartialA : IForBody
    {
        public DirectA A;
        public TF[] Partial;
        public int K, FullTiles, Og;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int grp)
        {
            int k = K, lda = A.Lda, fullTiles = FullTiles, og = Og;
            var aData = A.Data;
            var aoff = A.AOff;
            var partial = Partial.AsSpan(grp * MR * k, MR * k);
            int rowBase = grp * A.GroupStride + fullTiles * MR * lda;
            for (int r = 0; r < MR; r++)
            {
                bool valid = fullTiles * MR + r < og;
                for (int kk = 0; kk < k; kk++) partial[kk * MR + r] = valid ? aData[rowBase + r * lda + aoff[kk]] : TF.Zero;
            }
        }
    }

    /// <summary>One work unit of <see cref="DirectCore"/>: (image, group, 64 rows, 128 grid columns).</summary>
    private struct DirectUnit : IForBody
    {
        public DirectInput Src;
        public DirectA A;
        public TF[]? BData, PartialAll;
        public int Groups, Og, GridWidth, ValidCols, Nr, K, Grid, Nc, MTilesG, FullTiles, McTiles, MBlocks, NTiles;
        public int[] PackedAOff;
        public DirectOutput Dst;
        public IConvEpilogue<TF>? Epilogue;
        public SimdPath Path;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int u)
        {
            var src = Src;
            var a = A;
            var dst = Dst;
            var bData = BData;
            var epilogue = Epilogue;
            var path = Path;
            var partialAll = PartialAll;
            var packedAOff = PackedAOff;
            int groups = Groups, og = Og, gridWidth = GridWidth, validCols = ValidCols, nr = Nr, k = K, grid = Grid, nc = Nc;
            int mTilesG = MTilesG, fullTiles = FullTiles, mcTiles = McTiles, mBlocks = MBlocks, nTiles = NTiles, lda = a.Lda;
            var aData = a.Data;
            var aoff = a.AOff;
            var off = src.Off;
        int nt = u % nTiles, rest = u / nTiles;
        int mb = rest % mBlocks; rest /= mBlocks;
        int grp = rest % groups, img = rest / groups;
        int t0 = mb * mcTiles, tiles = Math.Min(mcTiles, mTilesG - t0);
        int j0 = nt * nc, ncols = Math.Min(nc, grid - j0);
        int panels = Ceil(ncols, nr), ldc = panels * nr;
        var cbuf = Grow(ref t_c, tiles * MR * ldc).AsSpan(0, tiles * MR * ldc);
        // No clearing: the first block of the reduction starts each tile from +0, the last adds the bias in registers
        // (rows past the group's rows get 0: they are discarded).
        Span<TF> rowBias = default;
        if (bData is not null)
        {
            rowBias = Grow(ref t_bias, tiles * MR).AsSpan(0, tiles * MR);
            for (int r = 0; r < rowBias.Length; r++)
                rowBias[r] = t0 * MR + r < og ? bData[grp * og + t0 * MR + r] : TF.Zero;
        }
        var xb = src.Data.AsSpan(img * src.ImageStride + grp * src.GroupStride + j0);
        int full = Math.Clamp(fullTiles - t0, 0, tiles);
        Span<TF> partial = full < tiles ? partialAll.AsSpan(grp * MR * k, MR * k) : default;
        var ag = aData.AsSpan(grp * a.GroupStride + t0 * MR * lda);
        // Few panels (small grids): one pass over the whole reduction per tile, so the rows of A stream sequentially.
        int kcMax = panels <= Conv2dTuning.FullKPanels ? k : Conv2dTuning.KC;
        if (full == tiles && ncols == panels * nr && dst.ColStride == 1 && validCols == gridWidth
            && dst.RowStride == gridWidth)
        {
            // The grid is the output plane itself and every panel of this unit is whole: the tiles accumulate in the
            // output (row stride = the channel stride), nothing is copied, and the epilogue runs on the output rows.
            int cAt = img * dst.ImageStride + (grp * og + t0 * MR) * dst.ChanStride + dst.Base + j0;
            var cOut = dst.Data.AsSpan(cAt);
            for (int k0 = 0; k0 < k; k0 += kcMax)
            {
                int kc = Math.Min(kcMax, k - k0);
                Macro(path, ag, lda, aoff.AsSpan(k0, kc), MR * lda, full, xb, nr, panels, off.AsSpan(k0, kc), cOut, dst.ChanStride,
                    k0 == 0, k0 + kc == k ? rowBias : default);
            }
            if (epilogue is not null)
                for (int r = 0; r < tiles * MR; r++) epilogue.Apply(cOut.Slice(r * dst.ChanStride, ncols));
            return;
        }
        for (int k0 = 0; k0 < k; k0 += kcMax)
        {
            int kc = Math.Min(kcMax, k - k0);
            bool first = k0 == 0, last = k0 + kc == k;
            if (full > 0)
                Macro(path, ag, lda, aoff.AsSpan(k0, kc), MR * lda, full, xb, nr, panels, off.AsSpan(k0, kc), cbuf, ldc,
                    first, last ? rowBias[..Math.Min(rowBias.Length, full * MR)] : default);
            if (full < tiles)
                Macro(path, partial[(k0 * MR)..], 1, packedAOff.AsSpan(0, kc), MR * kc, 1, xb, nr, panels, off.AsSpan(k0, kc),
                    cbuf[(full * MR * ldc)..], ldc, first, last && !rowBias.IsEmpty ? rowBias[(full * MR)..] : default);
        }
        for (int r = 0; r < tiles * MR; r++)
        {
            int o = t0 * MR + r;
            if (o >= og) break;
            int oc = grp * og + o;
            int chanBase = img * dst.ImageStride + oc * dst.ChanStride + dst.Base;
            var srcRow = cbuf.Slice(r * ldc, ncols);
            // The bias is in (added by the micro-kernel); the epilogue runs once over the whole row of the tile (the
            // grid's junk columns too, which are discarded): vectorised even where the output rows are short.
            epilogue?.Apply(srcRow);
            if (dst.ColStride == 1 && validCols == gridWidth && dst.RowStride == gridWidth)
            {
                // The grid is the output plane itself (no junk columns): one contiguous copy.
                srcRow.CopyTo(dst.Data.AsSpan(chanBase + j0, ncols));
                continue;
            }
            // Copy the valid columns (v < validCols) of the grid, row segment by row segment.
            int jj = 0;
            while (jj < ncols)
            {
                int gj = j0 + jj, gu = gj / gridWidth, gv = gj - gu * gridWidth;
                int run = Math.Min(ncols - jj, gridWidth - gv);
                int valid = Math.Min(run, Math.Max(0, validCols - gv));
                if (valid > 0)
                {
                    int at = chanBase + gu * dst.RowStride + gv * dst.ColStride;
                    var s = srcRow.Slice(jj, valid);
                    if (dst.ColStride == 1) s.CopyTo(dst.Data.AsSpan(at, valid));
                    else
                    {
                        var d = dst.Data.AsSpan(at, (valid - 1) * dst.ColStride + 1);
                        for (int t = 0; t < valid; t++) d[t * dst.ColStride] = s[t];
                    }
                }
                jj += run;
            }
        }
        }
    }

    /// <summary>Any stride: implicit im2col packed into [panel][k][NR] micro-panels per unit, Eq. (conv.7).</summary>
    private static void ForwardPacked(TF[] xData, int n, int h, int w, TF[] wData, TF[]? bData, Conv2dGeometry g, TF[] yData, int ho, int wo)
    {
        var path = Conv2dTuning.Path;
        int nr = Nr(path);
        int p = ho * wo;
        int groups = g.Groups, og = g.OutPerGroup, ig = g.InPerGroup, k = g.ReductionLength;
        int mTilesG = Ceil(og, MR);
        var apack = PackWeights(wData, g, mTilesG);
        int mcTiles = Conv2dTuning.MC / MR, mBlocks = Ceil(mTilesG, mcTiles), nTiles = Ceil(p, Conv2dTuning.NC);
        var geo = new Im2Col(g, h, w, wo);
        var packedOff = PackedOffsets(nr);
        Compute.For(n * groups * mBlocks * nTiles, u =>
        {
            int nt = u % nTiles, rest = u / nTiles;
            int mb = rest % mBlocks; rest /= mBlocks;
            int grp = rest % groups, img = rest / groups;
            int t0 = mb * mcTiles, tiles = Math.Min(mcTiles, mTilesG - t0);
            int j0 = nt * Conv2dTuning.NC, ncols = Math.Min(Conv2dTuning.NC, p - j0);
            int panels = Ceil(ncols, nr), ldc = panels * nr;
            var cbuf = Grow(ref t_c, tiles * MR * ldc).AsSpan(0, tiles * MR * ldc);
            cbuf.Clear();
            var bbuf = Grow(ref t_b, (long)Conv2dTuning.KC * ldc);
            var xg = xData.AsSpan((img * g.InChannels + grp * ig) * h * w, ig * h * w);
            for (int k0 = 0; k0 < k; k0 += Conv2dTuning.KC)
            {
                int kc = Math.Min(Conv2dTuning.KC, k - k0);
                // B chunk [panel][kk][NR] of the implicit im2col matrix, Eq. (conv.7).
                for (int kk = 0; kk < kc; kk++)
                    geo.PackRow(xg, k0 + kk, j0, ncols, bbuf.AsSpan(kk * nr), kc * nr, nr, panels);
                Macro(path, apack.AsSpan(((grp * mTilesG + t0) * k + k0) * MR), k * MR, tiles,
                    bbuf, kc * nr, panels, packedOff.AsSpan(0, kc), cbuf, ldc);
            }
            for (int r = 0; r < tiles * MR; r++)
            {
                int o = t0 * MR + r;
                if (o >= og) break;
                int oc = grp * og + o;
                var src = cbuf.Slice(r * ldc, ncols);
                var dst = yData.AsSpan((img * g.OutChannels + oc) * p + j0, ncols);
                if (bData is null) src.CopyTo(dst);
                else TensorPrimitives.Add(src, bData[oc], dst); // Eq. (conv.1): bias added after the sum
            }
        });
    }

    // ---------------------------------------------------------------- packing

    /// <summary>Reads rows of the implicit im2col matrix of one image and group, Eq. (conv.7).</summary>
    private readonly struct Im2Col(Conv2dGeometry g, int h, int w, int wo)
    {
        private readonly int _kh = g.Kernel.H, _kw = g.Kernel.W, _sh = g.Stride.H, _sw = g.Stride.W;
        private readonly int _ph = g.Padding.H, _pw = g.Padding.W, _dh = g.Dilation.H, _dw = g.Dilation.W;

        /// <summary>
        /// Writes row k of the im2col matrix for columns [j0, j0 + ncols) into micro-panel layout: column t goes to
        /// dst[(t / nr)·panelStride + t % nr]; columns ncols ≤ t &lt; panels·nr are zero.
        /// </summary>
        public void PackRow(ReadOnlySpan<TF> xg, int k, int j0, int ncols, Span<TF> dst, int panelStride, int nr, int panels)
        {
            int khkw = _kh * _kw, c = k / khkw, rem = k - c * khkw, pp = rem / _kw, qq = rem - pp * _kw;
            var plane = xg.Slice(c * h * w, h * w);
            int rowOff = pp * _dh - _ph, colOff = qq * _dw - _pw;
            int oh = j0 / wo, ow = j0 - oh * wo, t = 0;
            while (t < ncols)
            {
                int lane = t % nr;
                int run = Math.Min(Math.Min(ncols - t, wo - ow), nr - lane);
                var d = dst.Slice(t / nr * panelStride + lane, run);
                int ih = oh * _sh + rowOff;
                if ((uint)ih >= (uint)h) d.Clear();
                else
                {
                    var src = plane.Slice(ih * w, w);
                    int iw0 = ow * _sw + colOff;
                    if (_sw == 1)
                    {
                        int lo = Math.Clamp(-iw0, 0, run), hi = Math.Clamp(w - iw0, lo, run);
                        d[..lo].Clear();
                        if (hi > lo) src.Slice(iw0 + lo, hi - lo).CopyTo(d[lo..hi]);
                        d[hi..].Clear();
                    }
                    else
                    {
                        for (int u = 0; u < run; u++)
                        {
                            int iw = iw0 + u * _sw;
                            d[u] = (uint)iw < (uint)w ? src[iw] : TF.Zero;
                        }
                    }
                }
                t += run;
                ow += run;
                if (ow == wo) { ow = 0; oh++; }
            }
            for (; t < panels * nr; t++) dst[t / nr * panelStride + t % nr] = TF.Zero;
        }

        /// <summary>dst[t] = col[k, j + t] for t &lt; count, where column j is output position (j / Wo, j % Wo).</summary>
        public void Segment(ReadOnlySpan<TF> xg, int k, int j, int count, Span<TF> dst)
        {
            int khkw = _kh * _kw, c = k / khkw, rem = k - c * khkw, pp = rem / _kw, qq = rem - pp * _kw;
            var plane = xg.Slice(c * h * w, h * w);
            int rowOff = pp * _dh - _ph, colOff = qq * _dw - _pw;
            int oh = j / wo, ow = j - oh * wo, t = 0;
            while (t < count)
            {
                int run = Math.Min(count - t, wo - ow);
                var d = dst.Slice(t, run);
                int ih = oh * _sh + rowOff;
                if ((uint)ih >= (uint)h) d.Clear();
                else
                {
                    var src = plane.Slice(ih * w, w);
                    int iw0 = ow * _sw + colOff;
                    if (_sw == 1)
                    {
                        int lo = Math.Clamp(-iw0, 0, run), hi = Math.Clamp(w - iw0, lo, run);
                        // Short runs (a 7 × 7 layer's rows) inline: span calls per run cost more than the copies.
                        for (int u = 0; u < lo; u++) d[u] = TF.Zero;
                        if (hi > lo) Strided.CopyShort(ref Unsafe.AsRef(in src[iw0 + lo]), ref d[lo], hi - lo);
                        for (int u = hi; u < run; u++) d[u] = TF.Zero;
                    }
                    else
                    {
                        for (int u = 0; u < run; u++)
                        {
                            int iw = iw0 + u * _sw;
                            d[u] = (uint)iw < (uint)w ? src[iw] : TF.Zero;
                        }
                    }
                }
                t += run;
                ow = 0;
                oh++;
            }
        }
    }

    // ---------------------------------------------------------------- macro- and micro-kernels, Eq. (conv.8)

    /// <summary>
    /// C[tiles·MR, panels·NR] += A·B over kc reduction indices. A tile t starts at a[t·aTileStride] laid out
    /// [kk][MR]; row kk of B panel jp starts at b[jp·bPanelStride + off[kk]]; C has row stride ldc. Each C element
    /// continues its own FMA chain in increasing kk order.
    /// </summary>
    private static void Macro(SimdPath path, Span<TF> a, int aTileStride, int tiles, Span<TF> b, int bPanelStride,
        int panels, ReadOnlySpan<int> off, Span<TF> c, int ldc) =>
        Macro(path, a, 1, PackedAOffsets().AsSpan(0, off.Length), aTileStride, tiles, b, bPanelStride, panels, off, c, ldc);

    /// <summary>
    /// As above with A element (r, kk) of a tile at a[aoff[kk] + r·lda] (packed: lda = 1, aoff = kk·MR; the weights in
    /// place: lda = K, aoff = kk; the flipped kernel read in place: lda = kh·kw, aoff = o·(I/G)·kh·kw + kh·kw − 1 − t).
    /// </summary>
    /// <para>
    /// <paramref name="zero"/>: the tile starts from +0 instead of loading C (the first block of the reduction: C need
    /// not be cleared). <paramref name="bias"/> (tiles·MR values, one per row; empty: none): added to each element after
    /// the FMA chain (the last block of the reduction), in registers, as Eq. (conv.1) adds it after the sum.
    /// </para>
    private static void Macro(SimdPath path, Span<TF> a, int lda, ReadOnlySpan<int> aoff, int aTileStride, int tiles, Span<TF> b, int bPanelStride,
        int panels, ReadOnlySpan<int> off, Span<TF> c, int ldc, bool zero = false, ReadOnlySpan<TF> bias = default)
    {
        int kc = off.Length, nr = Nr(path);
        int maxOff = 0;
        foreach (int o in off) maxOff = Math.Max(maxOff, o);
        // Bounds: the last tile and panel must fit in the spans (checked once here, not in the micro-kernel).
        int maxAoff = 0;
        foreach (int o in aoff) maxAoff = Math.Max(maxAoff, o);
        if (aoff.Length != kc || (long)(tiles - 1) * aTileStride + maxAoff + (long)(MR - 1) * lda + 1 > a.Length || (long)(panels - 1) * bPanelStride + maxOff + nr > b.Length
            || (long)(tiles * MR - 1) * ldc + panels * nr > c.Length || panels * nr > ldc || (!bias.IsEmpty && bias.Length < tiles * MR))
            throw new InvalidOperationException("conv2d internal error: packed buffers too small.");
        bool addBias = !bias.IsEmpty;
        ref TF bias0 = ref addBias ? ref MemoryMarshal.GetReference(bias) : ref Unsafe.NullRef<TF>();
        ref TF a0 = ref MemoryMarshal.GetReference(a);
        ref TF b0 = ref MemoryMarshal.GetReference(b);
        ref TF c0 = ref MemoryMarshal.GetReference(c);
        // Rows of A and B at a fixed step (packed panels, a 1×1 input or the weights read in place) need no table: the
        // micro-kernel computes their addresses instead of loading them (on 16-register x64, 2 loads in 8 per step).
        if (Stepped.Of(aoff) is { } aStep && Stepped.Of(off) is { } bStep)
            Tiles(path, ref a0, lda, aStep, aTileStride, tiles, ref b0, bStep, bPanelStride, panels, ref c0, ldc, nr, kc, zero, ref bias0, addBias);
        else
            Tiles(path, ref a0, lda, new Table(ref MemoryMarshal.GetReference(aoff)), aTileStride, tiles, ref b0,
                new Table(ref MemoryMarshal.GetReference(off)), bPanelStride, panels, ref c0, ldc, nr, kc, zero, ref bias0, addBias);
    }

    private static void Tiles<TO>(SimdPath path, ref TF a0, nint lda, TO aoff, int aTileStride, int tiles, ref TF b0, TO off,
        int bPanelStride, int panels, ref TF c0, int ldc, int nr, int kc, bool zero, ref TF bias0, bool addBias)
        where TO : IOffsets, allows ref struct
    {
        if (path == SimdPath.Vector256 && aTileStride == MR * lda && tiles > 1)
        {
            // The 16-register machines, A rows equally spaced across tiles (the weights read in place): the rows in
            // groups of six (MLAS's 6 × 16 AVX2 shape: 12 accumulators, 8 loads per 12 FMAs where two 4 × 2 halves
            // take 12 per 16), the rest in halves (6k + 2 rows as 6(k − 1) + 4 + 4). Same chains, same bits.
            int rows = tiles * MR, sixes = rows / 6 - (rows % 6 == 2 ? 1 : 0);
            for (int jp = 0; jp < panels; jp++)
            {
                ref TF bp = ref Unsafe.Add(ref b0, jp * bPanelStride);
                for (int r = 0; r < rows; r += r < 6 * sixes ? 6 : 4)
                {
                    ref TF ap = ref Unsafe.Add(ref a0, r * lda);
                    ref TF cp = ref Unsafe.Add(ref c0, r * ldc + jp * nr);
                    ref TF bt = ref addBias ? ref Unsafe.Add(ref bias0, r) : ref Unsafe.NullRef<TF>();
                    if (r < 6 * sixes) MicroSix<Simd256<TF>, TO>(ref ap, lda, aoff, ref bp, off, ref cp, kc, ldc, zero, ref bt, addBias);
                    else MicroHalf<Simd256<TF>, TO>(ref ap, lda, aoff, ref bp, off, ref cp, kc, ldc, zero, ref bt, addBias);
                }
            }
            return;
        }
        for (int jp = 0; jp < panels; jp++)
        {
            ref TF bp = ref Unsafe.Add(ref b0, jp * bPanelStride);
            for (int t = 0; t < tiles; t++)
            {
                ref TF ap = ref Unsafe.Add(ref a0, t * aTileStride);
                ref TF cp = ref Unsafe.Add(ref c0, t * MR * ldc + jp * nr);
                ref TF bt = ref addBias ? ref Unsafe.Add(ref bias0, t * MR) : ref Unsafe.NullRef<TF>();
                switch (path)
                {
                    case SimdPath.Vector512: Micro<Simd512<TF>, TO>(ref ap, lda, aoff, ref bp, off, ref cp, kc, ldc, zero, ref bt, addBias); break;
                    case SimdPath.Vector256: Micro<Simd256<TF>, TO>(ref ap, lda, aoff, ref bp, off, ref cp, kc, ldc, zero, ref bt, addBias); break;
                    default: Micro<SimdPortable<TF>, TO>(ref ap, lda, aoff, ref bp, off, ref cp, kc, ldc, zero, ref bt, addBias); break;
                }
            }
        }
    }

    /// <summary>Where row kk of A or B starts, relative to the tile's or panel's start.</summary>
    private interface IOffsets
    {
        /// <summary>The offset of row kk.</summary>
        nint At(int kk);

        /// <summary>Whether row kk is at At(0) + kk·<see cref="Step"/> (a JIT constant per type).</summary>
        static abstract bool IsStepped { get; }

        /// <summary>The step between rows, when <see cref="IsStepped"/>.</summary>
        nint Step { get; }
    }

    /// <summary>Offsets read from a table.</summary>
    private readonly ref struct Table(ref int first) : IOffsets
    {
        private readonly ref int _first = ref first;

        public nint At(int kk) => Unsafe.Add(ref Unsafe.AsRef(in _first), kk);

        public static bool IsStepped => false;

        public nint Step => 0;
    }

    /// <summary>Offsets start + kk·step.</summary>
    private readonly struct Stepped(nint start, nint step) : IOffsets
    {
        public nint At(int kk) => start + kk * step;

        public static bool IsStepped => true;

        public nint Step => step;

        /// <summary>The table as a start and a step, or null when its offsets are not equally spaced.</summary>
        public static Stepped? Of(ReadOnlySpan<int> table)
        {
            if (table.IsEmpty) return new Stepped(0, 0);
            int step = table.Length > 1 ? table[1] - table[0] : 0;
            for (int kk = 2; kk < table.Length; kk++)
                if (table[kk] - table[kk - 1] != step) return null;
            return new Stepped(table[0], step);
        }
    }

    /// <summary>
    /// The MR × 2 register tile, written once for every vector width: 16 accumulators, one FMA chain per element over
    /// kk, A broadcast from a[aoff[kk] + r·lda], B two registers at b[off[kk]].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Micro<TV, TO>(ref TF a, nint lda, TO aoff, ref TF b, TO off, ref TF c, int kc, int ldc,
        bool zero, ref TF bias, bool addBias)
        where TV : unmanaged, ISimd<TV, TF> where TO : IOffsets, allows ref struct
    {
        if (TV.SixteenRegisters)
        {
            // x64 without AVX-512 has 16 vector registers: the 16 accumulators of the 8 × 2 tile (plus 3 operands) would
            // spill on every step, so the tile runs as two 4 × 2 halves over the same B (the same chains, the same bits).
            MicroHalf<TV, TO>(ref a, lda, aoff, ref b, off, ref c, kc, ldc, zero, ref bias, addBias);
            MicroHalf<TV, TO>(ref Unsafe.Add(ref a, 4 * lda), lda, aoff, ref b, off, ref Unsafe.Add(ref c, 4 * ldc), kc, ldc, zero,
                ref Unsafe.Add(ref bias, 4), addBias);
            return;
        }
        nuint l = (nuint)TV.Count, s = (nuint)ldc;
        TV c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        if (zero)
        {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = TV.Zero;
            c40 = c41 = c50 = c51 = c60 = c61 = c70 = c71 = TV.Zero;
        }
        else
        {
            c00 = TV.Load(ref c, 0); c01 = TV.Load(ref c, l);
            c10 = TV.Load(ref c, s); c11 = TV.Load(ref c, s + l);
            c20 = TV.Load(ref c, 2 * s); c21 = TV.Load(ref c, 2 * s + l);
            c30 = TV.Load(ref c, 3 * s); c31 = TV.Load(ref c, 3 * s + l);
            c40 = TV.Load(ref c, 4 * s); c41 = TV.Load(ref c, 4 * s + l);
            c50 = TV.Load(ref c, 5 * s); c51 = TV.Load(ref c, 5 * s + l);
            c60 = TV.Load(ref c, 6 * s); c61 = TV.Load(ref c, 6 * s + l);
            c70 = TV.Load(ref c, 7 * s); c71 = TV.Load(ref c, 7 * s + l);
        }
        nint l1 = lda, l2 = 2 * lda, l3 = 3 * lda, l4 = 4 * lda, l5 = 5 * lda, l6 = 6 * lda, l7 = 7 * lda;
        // Equally spaced rows advance by their step (no multiply per row: on the 16-register tile the address
        // arithmetic competed with the eight FMAs for the front end); tables are read row by row.
        bool stepped = TO.IsStepped && kc > 0;
        nint bs = stepped ? off.Step : 0, asp = stepped ? aoff.Step : 0;
        ref TF bp = ref Unsafe.Add(ref b, stepped ? off.At(0) : 0);
        ref TF ap = ref Unsafe.Add(ref a, stepped ? aoff.At(0) : 0);
        for (int kk = 0; kk < kc; kk++)
        {
            if (!TO.IsStepped)
            {
                bp = ref Unsafe.Add(ref b, off.At(kk));
                ap = ref Unsafe.Add(ref a, aoff.At(kk));
            }
            var b0 = TV.Load(ref bp, 0);
            var b1 = TV.Load(ref bp, l);
            TV av;
            av = TV.Splat(ap); c00 = TV.FusedMultiplyAdd(av, b0, c00); c01 = TV.FusedMultiplyAdd(av, b1, c01);
            av = TV.Splat(Unsafe.Add(ref ap, l1)); c10 = TV.FusedMultiplyAdd(av, b0, c10); c11 = TV.FusedMultiplyAdd(av, b1, c11);
            av = TV.Splat(Unsafe.Add(ref ap, l2)); c20 = TV.FusedMultiplyAdd(av, b0, c20); c21 = TV.FusedMultiplyAdd(av, b1, c21);
            av = TV.Splat(Unsafe.Add(ref ap, l3)); c30 = TV.FusedMultiplyAdd(av, b0, c30); c31 = TV.FusedMultiplyAdd(av, b1, c31);
            av = TV.Splat(Unsafe.Add(ref ap, l4)); c40 = TV.FusedMultiplyAdd(av, b0, c40); c41 = TV.FusedMultiplyAdd(av, b1, c41);
            av = TV.Splat(Unsafe.Add(ref ap, l5)); c50 = TV.FusedMultiplyAdd(av, b0, c50); c51 = TV.FusedMultiplyAdd(av, b1, c51);
            av = TV.Splat(Unsafe.Add(ref ap, l6)); c60 = TV.FusedMultiplyAdd(av, b0, c60); c61 = TV.FusedMultiplyAdd(av, b1, c61);
            av = TV.Splat(Unsafe.Add(ref ap, l7)); c70 = TV.FusedMultiplyAdd(av, b0, c70); c71 = TV.FusedMultiplyAdd(av, b1, c71);
            bp = ref Unsafe.Add(ref bp, bs);
            ap = ref Unsafe.Add(ref ap, asp);
        }
        if (addBias)
        {
            // Eq. (conv.1): + b[o] after the whole sum, one rounding, as the copy-out added it before.
            TV bv = TV.Splat(bias); c00 = TV.Add(c00, bv); c01 = TV.Add(c01, bv);
            bv = TV.Splat(Unsafe.Add(ref bias, 1)); c10 = TV.Add(c10, bv); c11 = TV.Add(c11, bv);
            bv = TV.Splat(Unsafe.Add(ref bias, 2)); c20 = TV.Add(c20, bv); c21 = TV.Add(c21, bv);
            bv = TV.Splat(Unsafe.Add(ref bias, 3)); c30 = TV.Add(c30, bv); c31 = TV.Add(c31, bv);
            bv = TV.Splat(Unsafe.Add(ref bias, 4)); c40 = TV.Add(c40, bv); c41 = TV.Add(c41, bv);
            bv = TV.Splat(Unsafe.Add(ref bias, 5)); c50 = TV.Add(c50, bv); c51 = TV.Add(c51, bv);
            bv = TV.Splat(Unsafe.Add(ref bias, 6)); c60 = TV.Add(c60, bv); c61 = TV.Add(c61, bv);
            bv = TV.Splat(Unsafe.Add(ref bias, 7)); c70 = TV.Add(c70, bv); c71 = TV.Add(c71, bv);
        }
        TV.Store(c00, ref c, 0); TV.Store(c01, ref c, l);
        TV.Store(c10, ref c, s); TV.Store(c11, ref c, s + l);
        TV.Store(c20, ref c, 2 * s); TV.Store(c21, ref c, 2 * s + l);
        TV.Store(c30, ref c, 3 * s); TV.Store(c31, ref c, 3 * s + l);
        TV.Store(c40, ref c, 4 * s); TV.Store(c41, ref c, 4 * s + l);
        TV.Store(c50, ref c, 5 * s); TV.Store(c51, ref c, 5 * s + l);
        TV.Store(c60, ref c, 6 * s); TV.Store(c61, ref c, 6 * s + l);
        TV.Store(c70, ref c, 7 * s); TV.Store(c71, ref c, 7 * s + l);
    }

    /// <summary>Four rows of <see cref="Micro{TV, TO}"/>'s tile: 8 accumulators, the same FMA chains.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MicroHalf<TV, TO>(ref TF a, nint lda, TO aoff, ref TF b, TO off, ref TF c, int kc, int ldc,
        bool zero, ref TF bias, bool addBias)
        where TV : unmanaged, ISimd<TV, TF> where TO : IOffsets, allows ref struct
    {
        nuint l = (nuint)TV.Count, s = (nuint)ldc;
        TV c00, c01, c10, c11, c20, c21, c30, c31;
        if (zero) c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = TV.Zero;
        else
        {
            c00 = TV.Load(ref c, 0); c01 = TV.Load(ref c, l);
            c10 = TV.Load(ref c, s); c11 = TV.Load(ref c, s + l);
            c20 = TV.Load(ref c, 2 * s); c21 = TV.Load(ref c, 2 * s + l);
            c30 = TV.Load(ref c, 3 * s); c31 = TV.Load(ref c, 3 * s + l);
        }
        nint l1 = lda, l2 = 2 * lda, l3 = 3 * lda;
        // Equally spaced rows advance by their step (no multiply per row: on the 16-register tile the address
        // arithmetic competed with the eight FMAs for the front end); tables are read row by row.
        bool stepped = TO.IsStepped && kc > 0;
        nint bs = stepped ? off.Step : 0, asp = stepped ? aoff.Step : 0;
        ref TF bp = ref Unsafe.Add(ref b, stepped ? off.At(0) : 0);
        ref TF ap = ref Unsafe.Add(ref a, stepped ? aoff.At(0) : 0);
        for (int kk = 0; kk < kc; kk++)
        {
            if (!TO.IsStepped)
            {
                bp = ref Unsafe.Add(ref b, off.At(kk));
                ap = ref Unsafe.Add(ref a, aoff.At(kk));
            }
            var b0 = TV.Load(ref bp, 0);
            var b1 = TV.Load(ref bp, l);
            TV av;
            av = TV.Splat(ap); c00 = TV.FusedMultiplyAdd(av, b0, c00); c01 = TV.FusedMultiplyAdd(av, b1, c01);
            av = TV.Splat(Unsafe.Add(ref ap, l1)); c10 = TV.FusedMultiplyAdd(av, b0, c10); c11 = TV.FusedMultiplyAdd(av, b1, c11);
            av = TV.Splat(Unsafe.Add(ref ap, l2)); c20 = TV.FusedMultiplyAdd(av, b0, c20); c21 = TV.FusedMultiplyAdd(av, b1, c21);
            av = TV.Splat(Unsafe.Add(ref ap, l3)); c30 = TV.FusedMultiplyAdd(av, b0, c30); c31 = TV.FusedMultiplyAdd(av, b1, c31);
            bp = ref Unsafe.Add(ref bp, bs);
            ap = ref Unsafe.Add(ref ap, asp);
        }
        if (addBias)
        {
            TV bv = TV.Splat(bias); c00 = TV.Add(c00, bv); c01 = TV.Add(c01, bv);
            bv = TV.Splat(Unsafe.Add(ref bias, 1)); c10 = TV.Add(c10, bv); c11 = TV.Add(c11, bv);
            bv = TV.Splat(Unsafe.Add(ref bias, 2)); c20 = TV.Add(c20, bv); c21 = TV.Add(c21, bv);
            bv = TV.Splat(Unsafe.Add(ref bias, 3)); c30 = TV.Add(c30, bv); c31 = TV.Add(c31, bv);
        }
        TV.Store(c00, ref c, 0); TV.Store(c01, ref c, l);
        TV.Store(c10, ref c, s); TV.Store(c11, ref c, s + l);
        TV.Store(c20, ref c, 2 * s); TV.Store(c21, ref c, 2 * s + l);
        TV.Store(c30, ref c, 3 * s); TV.Store(c31, ref c, 3 * s + l);
    }

    /// <summary>Six rows of equally spaced A on Vector256: 12 accumulators, the same FMA chains as <see cref="Micro{TV, TO}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MicroSix<TV, TO>(ref TF a, nint lda, TO aoff, ref TF b, TO off, ref TF c, int kc, int ldc,
        bool zero, ref TF bias, bool addBias)
        where TV : unmanaged, ISimd<TV, TF> where TO : IOffsets, allows ref struct
    {
        nuint l = (nuint)TV.Count, s = (nuint)ldc;
        TV c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        if (zero) c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = TV.Zero;
        else
        {
            c00 = TV.Load(ref c, 0); c01 = TV.Load(ref c, l);
            c10 = TV.Load(ref c, s); c11 = TV.Load(ref c, s + l);
            c20 = TV.Load(ref c, 2 * s); c21 = TV.Load(ref c, 2 * s + l);
            c30 = TV.Load(ref c, 3 * s); c31 = TV.Load(ref c, 3 * s + l);
            c40 = TV.Load(ref c, 4 * s); c41 = TV.Load(ref c, 4 * s + l);
            c50 = TV.Load(ref c, 5 * s); c51 = TV.Load(ref c, 5 * s + l);
        }
        nint l1 = lda, l2 = 2 * lda, l3 = 3 * lda, l4 = 4 * lda, l5 = 5 * lda;
        // Equally spaced rows advance by their step (no multiply per row: on the 16-register tile the address
        // arithmetic competed with the eight FMAs for the front end); tables are read row by row.
        bool stepped = TO.IsStepped && kc > 0;
        nint bs = stepped ? off.Step : 0, asp = stepped ? aoff.Step : 0;
        ref TF bp = ref Unsafe.Add(ref b, stepped ? off.At(0) : 0);
        ref TF ap = ref Unsafe.Add(ref a, stepped ? aoff.At(0) : 0);
        for (int kk = 0; kk < kc; kk++)
        {
            if (!TO.IsStepped)
            {
                bp = ref Unsafe.Add(ref b, off.At(kk));
                ap = ref Unsafe.Add(ref a, aoff.At(kk));
            }
            var b0 = TV.Load(ref bp, 0);
            var b1 = TV.Load(ref bp, l);
            TV av;
            av = TV.Splat(ap); c00 = TV.FusedMultiplyAdd(av, b0, c00); c01 = TV.FusedMultiplyAdd(av, b1, c01);
            av = TV.Splat(Unsafe.Add(ref ap, l1)); c10 = TV.FusedMultiplyAdd(av, b0, c10); c11 = TV.FusedMultiplyAdd(av, b1, c11);
            av = TV.Splat(Unsafe.Add(ref ap, l2)); c20 = TV.FusedMultiplyAdd(av, b0, c20); c21 = TV.FusedMultiplyAdd(av, b1, c21);
            av = TV.Splat(Unsafe.Add(ref ap, l3)); c30 = TV.FusedMultiplyAdd(av, b0, c30); c31 = TV.FusedMultiplyAdd(av, b1, c31);
            av = TV.Splat(Unsafe.Add(ref ap, l4)); c40 = TV.FusedMultiplyAdd(av, b0, c40); c41 = TV.FusedMultiplyAdd(av, b1, c41);
            av = TV.Splat(Unsafe.Add(ref ap, l5)); c50 = TV.FusedMultiplyAdd(av, b0, c50); c51 = TV.FusedMultiplyAdd(av, b1, c51);
            bp = ref Unsafe.Add(ref bp, bs);
            ap = ref Unsafe.Add(ref ap, asp);
        }
        if (addBias)
        {
            TV bv = TV.Splat(bias); c00 = TV.Add(c00, bv); c01 = TV.Add(c01, bv);
            bv = TV.Splat(Unsafe.Add(ref bias, 1)); c10 = TV.Add(c10, bv); c11 = TV.Add(c11, bv);
            bv = TV.Splat(Unsafe.Add(ref bias, 2)); c20 = TV.Add(c20, bv); c21 = TV.Add(c21, bv);
            bv = TV.Splat(Unsafe.Add(ref bias, 3)); c30 = TV.Add(c30, bv); c31 = TV.Add(c31, bv);
            bv = TV.Splat(Unsafe.Add(ref bias, 4)); c40 = TV.Add(c40, bv); c41 = TV.Add(c41, bv);
            bv = TV.Splat(Unsafe.Add(ref bias, 5)); c50 = TV.Add(c50, bv); c51 = TV.Add(c51, bv);
        }
        TV.Store(c00, ref c, 0); TV.Store(c01, ref c, l);
        TV.Store(c10, ref c, s); TV.Store(c11, ref c, s + l);
        TV.Store(c20, ref c, 2 * s); TV.Store(c21, ref c, 2 * s + l);
        TV.Store(c30, ref c, 3 * s); TV.Store(c31, ref c, 3 * s + l);
        TV.Store(c40, ref c, 4 * s); TV.Store(c41, ref c, 4 * s + l);
        TV.Store(c50, ref c, 5 * s); TV.Store(c51, ref c, 5 * s + l);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<TF> Fma(Vector512<TF> x, Vector512<TF> y, Vector512<TF> acc) =>
        typeof(TF) == typeof(float)
            ? Vector512.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), acc.AsSingle()).As<float, TF>()
            : Vector512.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), acc.AsDouble()).As<double, TF>();
}
