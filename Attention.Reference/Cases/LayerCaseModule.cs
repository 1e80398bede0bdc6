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
        var result = net.Run(x, dy, training, kernels, OnOutput, options.Trace, conventions: options.Conventions);
        if (options.Progress is not null && clock.ElapsedMilliseconds > 1500)
            options.Progress($"{Name}: done in {clock.Elapsed.TotalSeconds:0.0} s");
        return result.Tensors;
    }
}
