using Attention.Reference.Layers;

namespace Attention.Reference.Models;

/// <summary>
/// A network compiled for inference by one pass over its tree (<see cref="PlanCompiler{T}"/>): every Conv → BatchNorm
/// (→ activation) run folded into one convolution step (the folded weights computed in float64, rounded once, the
/// activation the kernel's epilogue), residual sums and their activations done in place, the fast kernels, every
/// buffer kept from one forward to the next. Its logits agree with the float64 oracle to float32 rounding (tests:
/// ≤ 1e-4 of max |y| on every public network case).
/// <para>
/// The layers are not rewritten: the plan's steps call them, and their weights belong to the plan from here on (the
/// linear layers keep a transposed copy, the unfolded BatchNorms their affine map, the folded convolutions their own
/// weights). A plan reuses its buffers from one forward to the next and may overwrite tensors its own steps produced
/// (never the caller's input): one plan serves one thread at a time.
/// </para>
/// </summary>
/// <typeparam name="T">float (the edge path) or double.</typeparam>
public sealed class InferencePlan<T> where T : IFloatingPointIeee754<T>
{
    private InferencePlan(Network<T> network, InferencePlanOptions options)
    {
        Network = network;
        Options = options;
        (_root, var owners) = PlanCompiler<T>.Compile(network.Root, _profile);
        _pass = new()
        {
            RecordTape = false, Kernels = KernelPath.Fast, Winograd = options.Winograd, Buffers = new BufferCache<T>(),
            InputOwners = owners,
        };
    }

    /// <summary>The options it was compiled with.</summary>
    public InferencePlanOptions Options { get; }

    /// <summary>The network it was compiled from (its weights belong to the plan: change them and compile again).</summary>
    public Network<T> Network { get; }

    /// <summary>Compiles <paramref name="network"/> (loaded, eval mode), with <paramref name="options"/> (default: <see cref="InferencePlanOptions.Default"/>).</summary>
    public static InferencePlan<T> Compile(Network<T> network, InferencePlanOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        return new InferencePlan<T>(network, options ?? InferencePlanOptions.Default);
    }

    /// <summary>Compiles a model of the zoo with weights from a state_dict file.</summary>
    public static InferencePlan<T> Load(string model, string weights, InferencePlanOptions? options = null)
    {
        var net = ModelZoo.Create<T>(model);
        net.LoadStateDict(weights);
        return Compile(net, options);
    }

    private readonly PlanStep<T> _root;
    private readonly Pass<T> _pass;
    private readonly PlanProfile _profile = new();

    /// <summary>
    /// Where the time of a forward goes: runs <paramref name="rounds"/> forwards of x with every computing step timed
    /// (a convolution with its folded BatchNorm and activation, a layer run as it is, a residual block's SE gate, sum
    /// and activation), and gives, per step description, the calls per forward and the least time of one forward's
    /// calls over the rounds, the slowest first. The timing itself costs a clock read per step.
    /// </summary>
    public IReadOnlyList<PlanStepTime> Profile(DenseTensor<T> x, int rounds = 10)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rounds, 1);
        Run(x);
        var best = new Dictionary<string, PlanStepTime>(StringComparer.Ordinal);
        try
        {
            _profile.On = true;
            for (int r = 0; r < rounds; r++)
            {
                _profile.Steps.Clear();
                Run(x);
                foreach (var (what, (seconds, calls)) in _profile.Steps)
                    if (!best.TryGetValue(what, out var b) || seconds * 1e3 < b.Milliseconds) best[what] = new(what, calls, seconds * 1e3);
            }
        }
        finally
        {
            _profile.On = false;
        }
        return [.. best.Values.OrderByDescending(t => t.Milliseconds)];
    }

    private DenseTensor<T> Run(DenseTensor<T> x)
    {
        ArgumentNullException.ThrowIfNull(x);
        _pass.RestartBuffers();
        return _root.Run(x, _pass);
    }

    /// <summary>The logits for x [N, 3, H, W] (fast kernels, nothing recorded), as a new tensor.</summary>
    public DenseTensor<T> Forward(DenseTensor<T> x) =>
        // A copy: the last step's buffer belongs to the plan and is overwritten by the next forward.
        Run(x).Clone();

    /// <summary>The logits for x written into <paramref name="output"/> (its shape must match).</summary>
    public void Forward(DenseTensor<T> x, DenseTensor<T> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var y = Run(x);
        ShapeUtil.Require(output, "output", y.Shape);
        y.Data.CopyTo(output.Data, 0);
    }
}

/// <summary>One line of <see cref="InferencePlan{T}.Profile"/>: a step description, its calls per forward and their time.</summary>
/// <param name="Step">What the step computes (<c>conv 256->64 1x1/1 at 56x56 +act</c>, <c>SEModule [1, 256, 56, 56]</c>, ...).</param>
/// <param name="Calls">Calls per forward.</param>
/// <param name="Milliseconds">The least total time of one forward's calls over the rounds.</param>
public sealed record PlanStepTime(string Step, int Calls, double Milliseconds);

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
