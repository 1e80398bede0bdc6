namespace Attention.Reference.Kernels.Conv;

/// <summary>
/// Which algorithm each pass of a fast convolution runs: every rule in one file, each overridable for the calling flow
/// through the one <see cref="KernelChoices"/> record of <see cref="SimdWidth"/> (tests cross-check the algorithms
/// against each other; every algorithm gives the same bits or its own documented order). The measurements behind the
/// thresholds are in docs/derivations/conv2d.md, "Algorithms and their rules". Every decision is reported to
/// <see cref="KernelChoices.OnConv"/> when one listens (<c>bench net --explain</c>).
/// </summary>
internal static class ConvDispatch
{
    /// <summary>Smallest reduction length for the row kernel on a 1×1 kernel.</summary>
    public const int RowMinK = 256;

    /// <summary>Smallest reduction length for the row kernel on a larger kernel (the ResNet stem's K = 147 takes it).</summary>
    public const int RowMinKSpatial = 128;

    /// <summary>Most work units per channel block for which each row-kernel unit packs its own weights.</summary>
    public const int RowPackInUnitMaxPosBlocks = 1;

    /// <summary>Fewest output positions (n·Ho·Wo) for which packing the weights on every call pays.</summary>
    public const int RowPackMinPositions = 128;

    /// <summary>The unpacked weight gradient runs when one image's output grid Ho × Wq has at least this many positions.</summary>
    public const int DirectWeightGradientMinGrid = 512;

    private static KernelChoices Choices => SimdWidth.Choices;

    /// <summary>Depthwise with multiplier 1 runs the depthwise kernels (unless forbidden).</summary>
    public static bool Depthwise(Conv2dGeometry g) =>
        g.Groups == g.InChannels && g.Groups == g.OutChannels && Choices.Depthwise != false;

    /// <summary>Largest stride-1 output plane (Ho·Wo) the depthwise forward runs with channels in lanes.</summary>
    public const int DepthwiseLanesMaxPlane = 10 * 10;

    /// <summary>
    /// The depthwise forward with channels in vector lanes (float32 where register transposes move the channel blocks:
    /// AVX-512 or AVX) for strided layers, whose plane form splits every input plane into phases, and for output planes
    /// up to 10 × 10, where one plane per unit pays its padding, grid and copies for a few dozen outputs (measured in
    /// docs/derivations/conv2d.md); unless forced or forbidden.
    /// </summary>
    public static bool DepthwiseLanes<TF>(Conv2dGeometry g, int ho, int wo) =>
        Choices.DepthwiseLanes ?? (typeof(TF) == typeof(float) && ChannelTransposes(Conv2dTuning.Path)
            && (g.Stride != (1, 1) || (long)ho * wo <= DepthwiseLanesMaxPlane));

    /// <summary>
    /// Whether whole blocks of float channels move by register transposes on <paramref name="path"/> (16 × 16 on
    /// AVX-512, 8 × 8 on AVX) in the channels-in-lanes depthwise forward; elsewhere it moves them lane by lane.
    /// </summary>
    public static bool ChannelTransposes(SimdPath path) => path switch
    {
        SimdPath.Vector512 => SimdWidth.Avx512Forms,
        SimdPath.Vector256 => System.Runtime.Intrinsics.X86.Avx.IsSupported && Choices.HardwareForms != false,
        _ => false,
    };

    /// <summary>
    /// Winograd F(2×2, 3×3) in an inference plan (float32 only): where it computes the shape (3×3, stride 1, padding 1,
    /// dilation 1, one group), on planes of at least 14 × 14 (at 7 × 7 it computes 64 tile outputs for 49) and with
    /// U (16·C·O values) at most 4 MB.
    /// </summary>
    public static bool Winograd<TF>(Conv2dGeometry g, int h, int w) where TF : unmanaged =>
        typeof(TF) == typeof(float) && WinogradComputes(g) && h >= 14 && w >= 14
        && 16L * g.InChannels * g.OutChannels * Unsafe.SizeOf<TF>() <= 4 << 20;

    /// <summary>Whether Winograd F(2×2, 3×3) computes <paramref name="g"/>: 3×3, stride 1, padding 1, dilation 1, one group.</summary>
    public static bool WinogradComputes(Conv2dGeometry g) =>
        g.Groups == 1 && g.Kernel == (3, 3) && g.Stride == (1, 1) && g.Padding == (1, 1) && g.Dilation == (1, 1);

    /// <summary>The packed-im2col forward only when forced (the direct forms are faster on every measured shape).</summary>
    public static bool PackedForward => Choices.PackedForward == true;

    /// <summary>A 1×1 stride-1 unpadded input is its own im2col matrix: read in place (unless forbidden).</summary>
    public static bool PointwiseInPlace(Conv2dGeometry g) =>
        g.Kernel == (1, 1) && g.Stride == (1, 1) && g.Padding == (0, 0) && Choices.PointwiseInPlace != false;

    /// <summary>Reading x and dY in place in the direct weight gradient (a 1×1 stride-1 unpadded convolution), unless forbidden.</summary>
    public static bool PointwiseInPlaceAllowed => Choices.PointwiseInPlace != false;

    /// <summary>
    /// The row kernel instead of the grid kernel for a direct forward: on Vector512 (its 14 accumulators, 2 weight
    /// vectors and a broadcast fit 32 registers) and on Vector256 only for kept packings (spatial kernels, and 1×1
    /// kernels on planes where the grid wastes a fifth of its products); for long
    /// enough reductions; where its packed weights are kept (<paramref name="prepacked"/>) or reused over enough
    /// positions, or each unit packs its own block fast (<paramref name="fastPack"/>); and where it discards no more
    /// products than the grid (a 1×1 kernel: at least 5 % fewer, since the grid reads a 1×1 input in place).
    /// </summary>
    public static bool Rows<TF>(SimdPath path, int og, int k, int n, int ho, int wo, int wq, bool prepacked, bool spatial, bool fastPack)
        where TF : unmanaged, IFloatingPointIeee754<TF>
    {
        if (Choices.RowKernel is bool forced) return forced;
        if (path == SimdPath.Vector256 ? !prepacked : path != SimdPath.Vector512) return false;
        if (k < (spatial ? RowMinKSpatial : RowMinK)
            || (!prepacked && (long)n * ho * wo < RowPackMinPositions && !(fastPack && RowsPackInUnit(n, ho, wo))))
            return false;
        int nr = Nr<TF>(path), lanes = nr, nc = Conv2dTuning.NC, tile = Conv2dFast<TF>.RowTile;
        double rows = (double)og / (Ceil(og, lanes) * lanes) * wo / (Ceil(wo, tile) * tile);
        long cols = (long)ho * wq, computed = cols / nc * nc + (long)Ceil((int)(cols % nc), nr) * nr;
        double grid = (double)ho * wo / computed * og / (Ceil(og, Conv2dTuning.MR) * Conv2dTuning.MR);
        // Vector256 (its 7 positions split 4 + 3 over 16 registers) takes a 1×1 kernel only where the grid discards a
        // fifth or more of its products (the 7 × 7 planes: 49 of 64 columns).
        return spatial ? rows >= grid - 0.005 : rows >= grid + (path == SimdPath.Vector256 ? 0.2 : 0.05);
    }

    /// <summary>
    /// Whether each row-kernel unit packs its own weights (when they are not kept): where each channel block is used by
    /// at most <see cref="RowPackInUnitMaxPosBlocks"/> work units (the 14 × 14 and 7 × 7 layers).
    /// </summary>
    public static bool RowsPackInUnit(int n, int ho, int wo) =>
        (long)n * Ceil(ho * Ceil(wo, Conv2dFast<float>.RowTile), Conv2dFast<float>.RowTilesPerUnit) <= RowPackInUnitMaxPosBlocks;

    /// <summary>
    /// A strided input gradient (dense kernels): the phase-split direct form, unless the I/G input channels fill less
    /// than one register tile (the RGB stem), where the packed col2im form fills the tiles better.
    /// </summary>
    public static bool PackedInputGradient(Conv2dGeometry g) => Choices.PackedInputGradient ?? g.InPerGroup < Conv2dTuning.MR;

    /// <summary>The depthwise input gradient in col2im's order unless the phase kernel is forced.</summary>
    public static bool DepthwisePhasedInputGradient => Choices.PackedInputGradient == false;

    /// <summary>The unpacked (direct) weight gradient on output grids of at least <see cref="DirectWeightGradientMinGrid"/> positions.</summary>
    public static bool DirectWeightGradient(int grid) => Choices.DirectWeightGradient ?? grid >= DirectWeightGradientMinGrid;

    /// <summary>Whether the calling flow listens for decisions (compose a report's text only then: warm calls allocate nothing).</summary>
    public static bool Listening => Choices.OnConv is not null;

    /// <summary>Reports a decision to the calling flow's listener, if any.</summary>
    public static void Report(string pass, string algorithm, SimdPath path, Conv2dGeometry g, int n, int h, int w) =>
        Choices.OnConv?.Invoke(new ConvDecision(pass, algorithm, path.ToString(), g, n, h, w));

    /// <summary>The grid kernel's register tile width NR: two vectors of the path.</summary>
    public static int Nr<TF>(SimdPath path) where TF : unmanaged, IFloatingPointIeee754<TF> => 2 * path switch
    {
        SimdPath.Vector512 => Vector512<TF>.Count,
        SimdPath.Vector256 => Vector256<TF>.Count,
        _ => Vector<TF>.Count,
    };

    private static int Ceil(int a, int b) => (a + b - 1) / b;
}
