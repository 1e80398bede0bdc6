using System.Numerics;
using Attention.Reference.Tensors;

namespace Attention.Reference.Cases;

/// <summary>Options for one run of a case.</summary>
public sealed class RunOptions
{
    /// <summary>Where to record named intermediates (for <c>attention-ref trace</c>), or null.</summary>
    public TraceLog? Trace { get; init; }

    /// <summary>
    /// Which kernels to run; null means the default for the element type (float64: the oracle, float32: the fast
    /// path). Network cases honour it; the single-module cases choose by element type.
    /// </summary>
    public Layers.KernelPath? Kernels { get; init; }

    /// <summary>
    /// Exact derivatives (default) or libtorch's where they differ (nn.Hardsigmoid's backward: the float32-rounded
    /// 1/6). Layer-tree cases honour it.
    /// </summary>
    public Layers.GradConventions Conventions { get; init; } = Layers.GradConventions.Exact;

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
}

/// <summary>A case produced by <see cref="CaseModule.Generate"/>: a config, inputs and parameters (float64).</summary>
/// <param name="Name">The case folder's name.</param>
/// <param name="Config">The case.json content.</param>
/// <param name="Inputs"><c>x</c> and <c>y.grad</c>.</param>
/// <param name="Parameters">The state_dict.</param>
public sealed record GeneratedCase(string Name, CaseConfig Config, TensorSet<double> Inputs, TensorSet<double> Parameters);

/// <summary>
/// A module that can run from a case folder. Each module (conv2d, se, ca, gct, …) subclasses this once and
/// registers in <see cref="ModuleRegistry"/>.
/// </summary>
public abstract class CaseModule
{
    /// <summary>The <c>"module"</c> value in case.json.</summary>
    public abstract string Name { get; }

    /// <summary>The case.json keys this module accepts, besides <c>"module"</c>.</summary>
    public abstract IReadOnlyList<string> ConfigKeys { get; }

    /// <summary>
    /// Computes <c>y</c> from <c>x</c> and, when <paramref name="inputs"/> holds <c>y.grad</c>, also <c>x.grad</c> and
    /// <c>&lt;param&gt;.grad</c> for every learnable parameter (in the shape the parameter was given). Modules with
    /// state (BatchNorm in training mode) also return the updated buffers under their state_dict names. Float64 is
    /// the oracle; float32 runs the fast path. Inputs are never modified.
    /// </summary>
    /// <exception cref="CaseFormatException">Unknown keys or bad hyper-parameters.</exception>
    /// <exception cref="ShapeMismatchException">A tensor's shape disagrees with the config.</exception>
    public abstract TensorSet<T> Run<T>(CaseConfig config, TensorSet<T> inputs, TensorSet<T> parameters, RunOptions options)
        where T : IFloatingPointIeee754<T>;

    /// <summary>Cases covering every variant this module has, for <c>attention-ref pack</c>.</summary>
    public abstract IEnumerable<GeneratedCase> Generate(int seed);

    /// <summary>Throws unless the inputs are exactly <c>x</c> and optionally <c>y.grad</c>.</summary>
    protected static void CheckInputNames<T>(TensorSet<T> inputs) where T : IFloatingPointIeee754<T> =>
        inputs.RejectUnknown(["x", "y.grad"]);
}
