using System.Diagnostics;
using System.Numerics;
using Attention.Reference.Layers;
using Attention.Reference.Models;
using Attention.Reference.Tensors;

namespace Attention.Reference.Cases;

/// <summary>
/// The one runner every case module shares: a factory builds the layer tree from <c>case.json</c>, the state_dict
/// is bound to it by name (<see cref="StateDictBinder"/>), the tree runs forward (and backward when the inputs hold
/// <c>y.grad</c>), and the outputs are named from the tree: <c>y</c>, <c>x.grad</c>, <c>&lt;name&gt;.grad</c> for every
/// learnable parameter (in the shape the state_dict gave it), and in training mode the updated buffers. Adding a
/// module is a factory (<see cref="Build{T}"/>) and nothing else.
/// </summary>
public abstract class LayerCaseModule : CaseModule
{
    /// <summary>Builds the layer tree a case describes, validating every key.</summary>
    /// <exception cref="CaseFormatException">Unknown keys or bad hyper-parameters.</exception>
    public abstract Layer<T> Build<T>(CaseConfig config) where T : IFloatingPointIeee754<T>;

    /// <summary>Whether the case runs in training mode (the <c>"training"</c> key, false when absent).</summary>
    protected virtual bool IsTraining(CaseConfig config) => config.Has("training") && config.GetBool("training");

    /// <inheritdoc />
    public sealed override TensorSet<T> Run<T>(CaseConfig config, TensorSet<T> inputs, TensorSet<T> parameters, RunOptions options)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(options);
        var net = new Network<T>(config.Module, Build<T>(config));
        bool training = IsTraining(config);
        CheckInputNames(inputs);
        var x = inputs.Get("x");
        ShapeUtil.RequireRank(x, "x", 4, "N, C, H, W");
        var dy = inputs.TryGet("y.grad");
        net.LoadStateDict(parameters);
        // The whole pass is planned before anything is allocated: every shape checked, y.grad against the output,
        // and the memory the module outputs will take against the cap.
        var plan = new ShapePlan();
        int[] outputShape;
        try
        {
            outputShape = net.Root.InferShape(x.ShapeArray(), plan);
        }
        catch (OverflowException)
        {
            throw new ArgumentException($"{config.Source}: the module outputs for x {x.ShapeString} do not fit in 64-bit sizes.");
        }
        if (dy is not null) ShapeUtil.Require(dy, "y.grad", outputShape);
        long elementSize = typeof(T) == typeof(float) ? 4 : 8;
        long planned = checked(plan.Elements * elementSize * (dy is null ? 1 : 2));
        long cap = options.MaxMemoryBytes ?? RunOptions.DefaultMaxMemory;
        if (planned > cap)
            throw new ArgumentException(
                $"{config.Source}: this run plans {Bytes(planned)} for {plan.Outputs} module outputs of x {x.ShapeString}, " +
                $"over the {Bytes(cap)} limit (--max-memory).");
        var kernels = options.Kernels ?? (typeof(T) == typeof(float) ? KernelPath.Fast : KernelPath.Oracle);

        var clock = Stopwatch.StartNew();
        long lastReport = 0;
        int modules = 0;
        void OnOutput(string name, DenseTensor<T> value)
        {
            modules++;
            options.ModuleOutput?.Invoke(name, value.Cast<double>());
            if (options.Progress is not null && clock.ElapsedMilliseconds - lastReport > 1500)
            {
                lastReport = clock.ElapsedMilliseconds;
                options.Progress($"{Name}: forward, {modules} module outputs, at {name} ({clock.Elapsed.TotalSeconds:0.0} s)");
            }
        }
        Action<string, DenseTensor<T>>? onGate = options.Gate is null ? null : (n, g) => options.Gate(n, g.Cast<double>());
        var result = net.Run(x, dy, training, kernels, OnOutput, options.Trace, conventions: options.Conventions, onGate: onGate);
        if (options.Progress is not null && clock.ElapsedMilliseconds > 1500)
            options.Progress($"{Name}: done in {clock.Elapsed.TotalSeconds:0.0} s");
        return result.Tensors;
    }

    /// <summary>A byte count for people: "4.4 GB".</summary>
    public static string Bytes(long bytes) => bytes >= 1L << 30
        ? $"{bytes / (double)(1L << 30):0.0} GB"
        : bytes >= 1L << 20 ? $"{bytes / (double)(1L << 20):0.0} MB" : $"{bytes} bytes";
}
