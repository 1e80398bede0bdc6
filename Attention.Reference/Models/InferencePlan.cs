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
    private InferencePlan(Network<T> network) => Network = network;

    /// <summary>The rewritten network.</summary>
    public Network<T> Network { get; }

    /// <summary>Compiles <paramref name="network"/> (loaded, eval mode) in place.</summary>
    public static InferencePlan<T> Compile(Network<T> network)
    {
        ArgumentNullException.ThrowIfNull(network);
        network.Root.FuseForInference();
        return new InferencePlan<T>(network);
    }

    /// <summary>Compiles a model of the zoo with weights from a state_dict file.</summary>
    public static InferencePlan<T> Load(string model, string weights)
    {
        var net = ModelZoo.Create<T>(model);
        net.LoadStateDict(weights);
        return Compile(net);
    }

    private readonly Pass<T> _pass = new() { RecordTape = false, Kernels = KernelPath.Fast };

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
