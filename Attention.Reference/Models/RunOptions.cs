using Attention.Reference.Layers;

namespace Attention.Reference.Models;

/// <summary>Options for one run of a case.</summary>
public sealed class RunOptions
{
    /// <summary>Where to record named intermediates (for <c>attention-ref trace</c>), or null.</summary>
    public TraceLog? Trace { get; init; }

    /// <summary>
    /// Which kernels to run; null means the default for the element type (float64: the oracle, float32: the fast
    /// path).
    /// </summary>
    public KernelPath? Kernels { get; init; }

    /// <summary>
    /// Exact derivatives (default) or libtorch's where they differ (nn.Hardsigmoid's backward: the float32-rounded
    /// 1/6).
    /// </summary>
    public GradConventions Conventions { get; init; } = GradConventions.Exact;

    /// <summary>Network cases: receives every module's output (path, value as float64) in forward order, or null.</summary>
    public Action<string, DenseTensor<double>>? ModuleOutput { get; init; }

    /// <summary>
    /// The most memory a run may plan to use, in bytes (null: <see cref="DefaultMaxMemory"/>). The plan counts every
    /// module output of the forward (twice with a backward pass) and is made, checked 64-bit, before anything is
    /// allocated; a larger plan is refused with an error naming both sizes.
    /// </summary>
    public long? MaxMemoryBytes { get; init; }

    /// <summary>The default cap: three quarters of the memory available to this process.</summary>
    public static long DefaultMaxMemory => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4 * 3;

    /// <summary>Receives every attention module's gate (path, gate as float64), or null (see <c>Pass.OnGate</c>).</summary>
    public Action<string, DenseTensor<double>>? Gate { get; init; }

    /// <summary>Progress messages for long runs (network cases), or null.</summary>
    public Action<string>? Progress { get; init; }

    /// <summary>Defaults: no trace.</summary>
    public static RunOptions Default { get; } = new();

    /// <summary>A byte count for people: "4.4 GB".</summary>
    public static string Bytes(long bytes) => bytes >= 1L << 30
        ? $"{bytes / (double)(1L << 30):0.0} GB"
        : bytes >= 1L << 20 ? $"{bytes / (double)(1L << 20):0.0} MB" : $"{bytes} bytes";
}

/// <summary>A case produced by <see cref="ModelFactory.Generate"/>: a config, inputs and parameters (float64).</summary>
/// <param name="Name">The case folder's name.</param>
/// <param name="Config">The case.json content.</param>
/// <param name="Inputs"><c>x</c> and <c>y.grad</c>.</param>
/// <param name="Parameters">The state_dict.</param>
public sealed record GeneratedCase(string Name, CaseConfig Config, TensorSet<double> Inputs, TensorSet<double> Parameters);
