using System.Numerics;
using Attention.Reference.Layers;
using Attention.Reference.Tensors;

namespace Attention.Reference.Models;

/// <summary>
/// A network compiled for inference: every Conv → BatchNorm (→ activation) run folded into one
/// <see cref="FusedConv2d{T}"/> (the folded weights computed in float64, rounded once), residual sums and their
/// activations done in place, the fast kernels. The network passed in is rewritten and belongs to the plan; its
/// logits agree with the float64 oracle to float32 rounding (tests: ≤ 1e-4 of max |y| on every public network case).
/// <para>
/// A plan reuses its buffers from one forward to the next and may overwrite tensors its own layers produced (never
/// the caller's input): one plan serves one thread at a time. Its rewritten network is for inference only (no
/// backward); running it with a dump or a module-output hook disables the in-place steps, so what is recorded stays
/// valid.
/// </para>
/// </summary>
/// <typeparam name="T">float (the edge path) or double.</typeparam>
public sealed class InferencePlan<T> where T : IFloatingPointIeee754<T>
{
    private InferencePlan(Network<T> network, InferencePlanOptions options)
    {
        Network = network;
        Options = options;
        _pass = new() { RecordTape = false, Kernels = KernelPath.Fast, Winograd = options.Winograd };
    }

    /// <summary>The options it was compiled with.</summary>
    public InferencePlanOptions Options { get; }

    /// <summary>The rewritten network.</summary>
    public Network<T> Network { get; }

    /// <summary>Compiles <paramref name="network"/> (loaded, eval mode) in place, with <paramref name="options"/> (default: <see cref="InferencePlanOptions.Default"/>).</summary>
    public static InferencePlan<T> Compile(Network<T> network, InferencePlanOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        options ??= InferencePlanOptions.Default;
        network.Root.FuseForInference();
        return new InferencePlan<T>(network, options);
    }

    /// <summary>Compiles a model of the zoo with weights from a state_dict file.</summary>
    public static InferencePlan<T> Load(string model, string weights, InferencePlanOptions? options = null)
    {
        var net = ModelZoo.Create<T>(model);
        net.LoadStateDict(weights);
        return Compile(net, options);
    }

    private readonly Pass<T> _pass;

    /// <summary>The logits for x [N, 3, H, W] (fast kernels, nothing recorded), as a new tensor.</summary>
    public DenseTensor<T> Forward(DenseTensor<T> x) =>
        // A copy: the last layer's buffer may belong to the plan and be overwritten by the next forward.
        Network.Root.Forward(x, _pass).Clone();

    /// <summary>The logits for x written into <paramref name="output"/> (its shape must match).</summary>
    public void Forward(DenseTensor<T> x, DenseTensor<T> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var y = Network.Root.Forward(x, _pass);
        ShapeUtil.Require(output, "output", y.Shape);
        y.Data.CopyTo(output.Data, 0);
    }
}

/// <summary>How <see cref="InferencePlan{T}.Compile"/> compiles a network.</summary>
public sealed record InferencePlanOptions
{
    /// <summary>The defaults: Winograd on.</summary>
    public static InferencePlanOptions Default { get; } = new();

    /// <summary>
    /// Whether float32 3×3 stride-1 convolutions run Winograd F(2×2, 3×3) where it is faster than the direct kernel
    /// (planes of at least 14 × 14; default true). Its roundings differ from the direct kernel's (docs/inference.md
    /// quotes its error against the float64 oracle: smaller than the direct kernel's on ResNet layers); false gives the
    /// direct kernels everywhere.
    /// </summary>
    public bool Winograd { get; init; } = true;
}
