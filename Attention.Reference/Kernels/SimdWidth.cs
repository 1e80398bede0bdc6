using System.Numerics;
using System.Runtime.Intrinsics;

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
/// The one place that chooses the vector width of every fast kernel (conv2d, depthwise, SE, CA, GCT): the widest
/// accelerated path, unless a test forces another for its own flow with <see cref="Forced"/> or <see cref="With{T}"/>.
/// Kernels read <see cref="Path"/> once per public call and hand it to their workers. The switch is an
/// <see cref="AsyncLocal{T}"/>, so it follows the caller's flow into the worker team and never leaks into other tests.
/// Kernels whose elements are lane-independent give identical bits on every path; reductions document their lane
/// order per path.
/// </summary>
internal static class SimdWidth
{
    private static readonly AsyncLocal<SimdPath?> s_forced = new();

    /// <summary>The path forced for the calling flow, or null for the hardware's widest.</summary>
    public static SimdPath? Forced { get => s_forced.Value; set => s_forced.Value = value; }

    /// <summary>The widest accelerated path of this machine.</summary>
    public static SimdPath Hardware { get; } =
        Vector512.IsHardwareAccelerated ? SimdPath.Vector512
        : Vector256.IsHardwareAccelerated ? SimdPath.Vector256 : SimdPath.Portable;

    /// <summary>The path in use for the calling flow.</summary>
    public static SimdPath Path => s_forced.Value ?? Hardware;

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
    public static T With<T>(SimdPath path, Func<T> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        var saved = s_forced.Value;
        s_forced.Value = path;
        try { return action(); }
        finally { s_forced.Value = saved; }
    }
}
