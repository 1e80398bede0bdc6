namespace Attention.Reference.Kernels;

/// <summary>Which vector registers the fast kernels use.</summary>
internal enum SimdPath
{
    /// <summary><see cref="Vector512{T}"/> (with <see cref="Vector256{T}"/> tails where a kernel has them).</summary>
    Vector512,

    /// <summary><see cref="Vector256{T}"/> (x64 AVX2).</summary>
    Vector256,

    /// <summary>The portable <see cref="Vector{T}"/> (ARM64 NEON, or software).</summary>
    Portable,
}

/// <summary>
/// Overrides, for the calling flow, of the choices the fast kernels otherwise make by their rules: the vector path
/// and the convolution algorithms (tests cross-check one algorithm against another; tuning measures them). A null
/// field means "decide by the rule" (<see cref="SimdWidth.Hardware"/>, and the rules of
/// <c>Kernels/Conv/ConvDispatch.cs</c>). <see cref="OnConv"/> receives every convolution's decision (for
/// <c>bench net --explain</c> and tests).
/// </summary>
internal sealed record KernelChoices
{
    /// <summary>The vector path, or null for the hardware's widest.</summary>
    public SimdPath? Path { get; init; }

    /// <summary>The channels-in-lanes row kernel of the direct forward forced (true) or forbidden (false).</summary>
    public bool? RowKernel { get; init; }

    /// <summary>The packed-im2col forward forced (true) instead of the direct one.</summary>
    public bool? PackedForward { get; init; }

    /// <summary>The packed col2im input gradient (true) or the phase-split direct one (false) for strided calls.</summary>
    public bool? PackedInputGradient { get; init; }

    /// <summary>The unpacked (direct) weight gradient forced (true) or forbidden (false).</summary>
    public bool? DirectWeightGradient { get; init; }

    /// <summary>The depthwise kernels forbidden (false): depthwise geometries then run the dense kernels.</summary>
    public bool? Depthwise { get; init; }

    /// <summary>The depthwise forward's channels-in-lanes form forced (true) or forbidden (false: one plane per unit).</summary>
    public bool? DepthwiseLanes { get; init; }

    /// <summary>Reading a 1×1 stride-1 unpadded convolution's input in place forbidden (false).</summary>
    public bool? PointwiseInPlace { get; init; }

    /// <summary>Winograd's work split (tile rows per band, channel-block groups per band) forced; it changes no bits.</summary>
    public (int BandRows, int ChannelGroups)? WinogradSplit { get; init; }

    /// <summary>
    /// The instruction-set-specific data-movement forms (AVX-512 permutes, register transposes and shuffle reductions;
    /// AVX2 gathers) forbidden (false): the kernels then move the same values with portable code, giving the same bits.
    /// Tests hold the two against each other; where the hardware lacks an instruction set its forms never run.
    /// </summary>
    public bool? HardwareForms { get; init; }

    /// <summary>Receives each convolution pass's decision, or null.</summary>
    public Action<ConvDecision>? OnConv { get; init; }
}

/// <summary>One convolution pass as the fast kernels ran it: which algorithm, on which vector path, for which call.</summary>
/// <param name="Pass"><c>forward</c>, <c>input gradient</c> or <c>weight gradient</c>.</param>
/// <param name="Algorithm">The algorithm's name (docs/derivations/conv2d.md, "Algorithms").</param>
/// <param name="Path">The vector path (Vector512, Vector256 or Portable).</param>
/// <param name="Geometry">The convolution.</param>
/// <param name="N">Batch.</param>
/// <param name="H">Input height.</param>
/// <param name="W">Input width.</param>
public readonly record struct ConvDecision(string Pass, string Algorithm, string Path, Conv.Conv2dGeometry Geometry, int N, int H, int W);

/// <summary>What the fast kernels decide, for people: the vector path and each convolution's algorithm (<c>bench net --explain</c>).</summary>
public static class KernelDecisions
{
    /// <summary>The vector path of the calling flow: Vector512, Vector256 or Portable.</summary>
    public static string Path => SimdWidth.Path.ToString();

    /// <summary>Runs <paramref name="action"/>, collecting every convolution pass's decision in the order they ran.</summary>
    public static IReadOnlyList<ConvDecision> Record(Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        var list = new List<ConvDecision>();
        SimdWidth.With(SimdWidth.Choices with { OnConv = d => { lock (list) list.Add(d); } }, () =>
        {
            action();
            return 0;
        });
        return list;
    }
}

/// <summary>
/// The one dispatch point of every fast kernel (conv2d, depthwise, Winograd, SE, CA, GCT, the plane reductions): the
/// vector width is the widest accelerated path unless the calling flow overrides it, and every override of an
/// algorithm choice lives in the one <see cref="KernelChoices"/> record held here. Kernels read <see cref="Path"/> once
/// per public call and hand it to their workers. The record is an <see cref="AsyncLocal{T}"/>, so it follows the
/// caller's flow into the worker team and never leaks into other tests. Kernels whose elements are lane-independent
/// give identical bits on every path; reductions document their lane order per path.
/// </summary>
internal static class SimdWidth
{
    private static readonly KernelChoices None = new();
    private static readonly AsyncLocal<KernelChoices?> s_choices = new();

    /// <summary>The overrides of the calling flow (all null by default).</summary>
    public static KernelChoices Choices { get => s_choices.Value ?? None; set => s_choices.Value = value; }

    /// <summary>The path forced for the calling flow, or null for the hardware's widest.</summary>
    public static SimdPath? Forced { get => Choices.Path; set => Choices = Choices with { Path = value }; }

    /// <summary>The widest accelerated path of this machine.</summary>
    public static SimdPath Hardware { get; } =
        Vector512.IsHardwareAccelerated ? SimdPath.Vector512
        : Vector256.IsHardwareAccelerated ? SimdPath.Vector256 : SimdPath.Portable;

    /// <summary>The path in use for the calling flow.</summary>
    public static SimdPath Path => s_choices.Value?.Path ?? Hardware;

    /// <summary>Whether the AVX-512 data-movement forms may run: the hardware has AVX-512 and the calling flow allows them.</summary>
    public static bool Avx512Forms => System.Runtime.Intrinsics.X86.Avx512F.IsSupported && s_choices.Value?.HardwareForms != false;

    /// <summary>Whether the AVX2 data-movement forms (gathers) may run: the hardware has AVX2 and the calling flow allows them.</summary>
    public static bool Avx2Forms => System.Runtime.Intrinsics.X86.Avx2.IsSupported && s_choices.Value?.HardwareForms != false;

    /// <summary>Whether the Vector512 kernels run (forced Vector512 runs them in software where the hardware lacks it).</summary>
    public static bool Use512 => Path == SimdPath.Vector512;

    /// <summary>
    /// Whether Vector256 kernels (or Vector512 kernels' 256-bit tails) run: on the Vector512 and Vector256 paths where
    /// the hardware accelerates them; the portable path uses <see cref="Vector{T}"/> only.
    /// </summary>
    public static bool Use256 => Uses256(Path);

    /// <summary>Whether <paramref name="path"/> runs Vector256 kernels or tails (for kernels handed the path by their caller).</summary>
    public static bool Uses256(SimdPath path) => path != SimdPath.Portable && Vector256.IsHardwareAccelerated;

    /// <summary>Runs <paramref name="action"/> with <paramref name="path"/> forced for the calling flow only.</summary>
    public static T With<T>(SimdPath path, Func<T> action) => With(Choices with { Path = path }, action);

    /// <summary>Runs <paramref name="action"/> with <paramref name="choices"/> for the calling flow only.</summary>
    public static T With<T>(KernelChoices choices, Func<T> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        var saved = s_choices.Value;
        s_choices.Value = choices;
        try { return action(); }
        finally { s_choices.Value = saved; }
    }
}
