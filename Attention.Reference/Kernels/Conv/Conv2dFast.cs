using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Attention.Reference.Kernels;
using Attention.Reference.Tensors;

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
            DepthwiseConv2dFast<TF>.Forward(x, weight, bias, g, y, epilogue);
            algorithm = "depthwise";
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
        bool fastPack = IsIdentity(aoff.AsSpan(0, g.ReductionLength)) || (typeof(TF) == typeof(float) && Avx2.IsSupported);
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
        if (typeof(TF) == typeof(float) && Avx512F.IsSupported)
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
        ref int o0 = ref MemoryMarshal.GetReference(off);
        ref int ao = ref MemoryMarshal.GetReference(aoff);
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
                    case SimdPath.Vector512: Micro<Simd512<TF>>(ref ap, lda, ref ao, ref bp, ref o0, ref cp, kc, ldc, zero, ref bt, addBias); break;
                    case SimdPath.Vector256: Micro<Simd256<TF>>(ref ap, lda, ref ao, ref bp, ref o0, ref cp, kc, ldc, zero, ref bt, addBias); break;
                    default: Micro<SimdPortable<TF>>(ref ap, lda, ref ao, ref bp, ref o0, ref cp, kc, ldc, zero, ref bt, addBias); break;
                }
            }
        }
    }

    /// <summary>
    /// The MR × 2 register tile, written once for every vector width: 16 accumulators, one FMA chain per element over
    /// kk, A broadcast from a[aoff[kk] + r·lda], B two registers at b[off[kk]].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Micro<TV>(ref TF a, nint lda, ref int aoff, ref TF b, ref int off, ref TF c, int kc, int ldc,
        bool zero, ref TF bias, bool addBias)
        where TV : unmanaged, ISimd<TV, TF>
    {
        if (TV.SixteenRegisters)
        {
            // x64 without AVX-512 has 16 vector registers: the 16 accumulators of the 8 × 2 tile (plus 3 operands) would
            // spill on every step, so the tile runs as two 4 × 2 halves over the same B (the same chains, the same bits).
            MicroHalf<TV>(ref a, lda, ref aoff, ref b, ref off, ref c, kc, ldc, zero, ref bias, addBias);
            MicroHalf<TV>(ref Unsafe.Add(ref a, 4 * lda), lda, ref aoff, ref b, ref off, ref Unsafe.Add(ref c, 4 * ldc), kc, ldc, zero,
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
        for (int kk = 0; kk < kc; kk++)
        {
            ref TF bp = ref Unsafe.Add(ref b, Unsafe.Add(ref off, kk));
            ref TF ap = ref Unsafe.Add(ref a, Unsafe.Add(ref aoff, kk));
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

    /// <summary>Four rows of <see cref="Micro{TV}"/>'s tile: 8 accumulators, the same FMA chains.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MicroHalf<TV>(ref TF a, nint lda, ref int aoff, ref TF b, ref int off, ref TF c, int kc, int ldc,
        bool zero, ref TF bias, bool addBias)
        where TV : unmanaged, ISimd<TV, TF>
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
        for (int kk = 0; kk < kc; kk++)
        {
            ref TF bp = ref Unsafe.Add(ref b, Unsafe.Add(ref off, kk));
            ref TF ap = ref Unsafe.Add(ref a, Unsafe.Add(ref aoff, kk));
            var b0 = TV.Load(ref bp, 0);
            var b1 = TV.Load(ref bp, l);
            TV av;
            av = TV.Splat(ap); c00 = TV.FusedMultiplyAdd(av, b0, c00); c01 = TV.FusedMultiplyAdd(av, b1, c01);
            av = TV.Splat(Unsafe.Add(ref ap, l1)); c10 = TV.FusedMultiplyAdd(av, b0, c10); c11 = TV.FusedMultiplyAdd(av, b1, c11);
            av = TV.Splat(Unsafe.Add(ref ap, l2)); c20 = TV.FusedMultiplyAdd(av, b0, c20); c21 = TV.FusedMultiplyAdd(av, b1, c21);
            av = TV.Splat(Unsafe.Add(ref ap, l3)); c30 = TV.FusedMultiplyAdd(av, b0, c30); c31 = TV.FusedMultiplyAdd(av, b1, c31);
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<TF> Fma(Vector512<TF> x, Vector512<TF> y, Vector512<TF> acc) =>
        typeof(TF) == typeof(float)
            ? Vector512.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), acc.AsSingle()).As<float, TF>()
            : Vector512.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), acc.AsDouble()).As<double, TF>();

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
        if (typeof(TF) == typeof(float) && nr == 32 && Avx512F.IsSupported)
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
