using Attention.Reference.Kernels.Conv;
using Attention.Reference.Layers;
using Attention.Reference.Ops;

namespace Attention.Reference.Models;

/// <summary>
/// The inference plan's compiler: one pass over a layer tree that emits the plan's steps. The layers know nothing of
/// it; it reads their structure (a chain's run, a residual block's branch, shortcut and activation, an SE module's
/// excitation) and decides, per call site:
/// <list type="bullet">
/// <item>Conv → BatchNorm (→ activation) runs become one <see cref="ConvStep{T}"/> (the BatchNorm folded into the
/// weights in float64, the activation the kernel's epilogue), also across a container boundary (a chain that ends in a
/// convolution, followed by a BatchNorm: the GCT ResNet's stem);</item>
/// <item>a residual block whose branch output is its own buffer adds the shortcut and applies its activation in place,
/// and one ending in SE applies y = act(h·s + shortcut) in one pass (<see cref="ResidualStep{T}"/>);</item>
/// <item>which layers own their input (it is the previous step's own buffer and nothing else reads it) and may
/// overwrite it: the pass's <see cref="Pass{T}.InputOwners"/>, a layer owning its input only if it does at every call
/// site;</item>
/// <item>every other layer runs as it is, its buffers kept from one forward to the next by the pass's
/// <see cref="BufferCache{T}"/>.</item>
/// </list>
/// Identities (eval-mode Dropout, DropPath, an absent norm) compute nothing and are dropped from runs.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
internal sealed class PlanCompiler<T> where T : IFloatingPointIeee754<T>
{
    private readonly Dictionary<Layer<T>, bool> _owned = new(ReferenceEqualityComparer.Instance);
    private readonly PlanProfile _profile;

    private PlanCompiler(PlanProfile profile) => _profile = profile;

    /// <summary>
    /// Compiles <paramref name="root"/>: its steps, and the layers that may overwrite their input; the steps time
    /// themselves into <paramref name="profile"/> while it is on.
    /// </summary>
    public static (PlanStep<T> Root, HashSet<Layer<T>> InputOwners) Compile(Layer<T> root, PlanProfile profile)
    {
        // The weights are fixed from here on: the layers that keep a derived form of them compute it once.
        foreach (var (_, m) in root.NamedModules())
        {
            if (m is Linear<T> linear) linear.Freeze();
            else if (m is BatchNorm2dLayer<T> bn) bn.Freeze();
        }
        var compiler = new PlanCompiler<T>(profile);
        var step = compiler.Compile(root, owned: false);
        var owners = new HashSet<Layer<T>>(ReferenceEqualityComparer.Instance);
        foreach (var (layer, owned) in compiler._owned) if (owned) owners.Add(layer);
        return (step, owners);
    }

    private PlanStep<T> Compile(Layer<T> layer, bool owned) => layer switch
    {
        Sequential<T> seq => Chain(seq.Run, null),
        Residual<T> block => Block(block),
        Conv2dLayer<T> conv => new ConvStep<T>(conv, null, null),
        _ => Leaf(layer, owned),
    };

    /// <summary>A layer run as it is; records whether it owns its input at this call site.</summary>
    private LayerStep<T> Leaf(Layer<T> layer, bool owned)
    {
        _owned[layer] = owned && _owned.GetValueOrDefault(layer, true);
        if (layer is SqueezeExcite<T> se) Excitation(se.Excitation);
        return new LayerStep<T>(layer, OwnsOutput(layer));
    }

    /// <summary>
    /// An SE module's excitation, which the module runs itself: its first layer reads the squeeze's own buffer, each
    /// later one the output of the one before (pass-throughs pass ownership on).
    /// </summary>
    private void Excitation(IReadOnlyList<Layer<T>> excitation)
    {
        bool owned = true;
        foreach (var layer in excitation)
        {
            if (layer is Identity<T> or TraceTap<T>) continue;
            _owned[layer] = owned && _owned.GetValueOrDefault(layer, true);
            owned = OwnsOutput(layer);
        }
    }

    /// <summary>
    /// Whether a layer's output is a buffer no one else reads: a new tensor, a buffer of its own, or its input overwritten
    /// only when it owns it. Views and pass-throughs (Flatten, Identity, trace taps) and unknown layers: no.
    /// </summary>
    private static bool OwnsOutput(Layer<T> layer) => layer is IActivationLayer<T> or Linear<T> or BatchNorm2dLayer<T>
        or SqueezeExcite<T> or CoordAtt<T> or GctLayer<T> or AdaptiveAvgPool2d<T> or MaxPool2d<T> or DirectionalAvgPool2d<T>;

    /// <summary>
    /// A run of layers; <paramref name="foldLast"/>: a BatchNorm (and activation) that follow this run in its parent, to
    /// fold into the run's last convolution.
    /// </summary>
    private ChainStep<T> Chain(IReadOnlyList<Layer<T>> layers, (BatchNorm2dLayer<T> Bn, IActivationLayer<T>? Act)? foldLast)
    {
        var run = Pruned(layers);
        var steps = new List<PlanStep<T>>();
        bool owned = false; // a run's first layer reads its container's input, which others may read
        for (int i = 0; i < run.Count; i++)
        {
            var next = i + 1 < run.Count ? run[i + 1] as BatchNorm2dLayer<T> : null;
            var act = next is not null && i + 2 < run.Count ? run[i + 2] as IActivationLayer<T> : null;
            PlanStep<T> step;
            if (run[i] is Conv2dLayer<T> conv && next is not null) step = new ConvStep<T>(conv, next, act);
            else if (run[i] is Conv2dLayer<T> last && i == run.Count - 1 && foldLast is { } fold)
                step = new ConvStep<T>(last, fold.Bn, fold.Act);
            else if (run[i] is Sequential<T> seq && next is not null && Pruned(seq.Run) is [.., Conv2dLayer<T>])
                step = Chain(seq.Run, (next, act)); // a new chain for this call site: elsewhere the container may run unfolded
            else
            {
                steps.Add(Compile(run[i], owned));
                owned = steps[^1].OwnsOutput;
                continue;
            }
            steps.Add(step);
            owned = true;
            if (step is ConvStep<T> or ChainStep<T> && next is not null) i += act is null ? 1 : 2;
        }
        return new ChainStep<T>(steps, _profile);
    }

    private static List<Layer<T>> Pruned(IReadOnlyList<Layer<T>> layers) =>
        layers.Where(l => l is not Identity<T> || layers.Count == 1).ToList();

    private PlanStep<T> Block(Residual<T> block)
    {
        var branch = block.Branch;
        // A branch ending in SE whose input is the step before's own buffer: the branch up to the SE, its gate, then
        // y = after(h·s + shortcut) in one pass per plane.
        if (block.Sum && branch.Count > 1 && branch[^1] is SqueezeExcite<T> se)
        {
            var before = Chain(branch.Take(branch.Count - 1).ToList(), null);
            if (before.OwnsOutput)
            {
                Excitation(se.Excitation);
                return new ResidualStep<T>(block, before, se, Shortcut(block), Epilogue(block.After)) { Profile = _profile };
            }
        }
        return new ResidualStep<T>(block, Chain(branch, null), null, Shortcut(block), Epilogue(block.After)) { Profile = _profile };
    }

    // The shortcut depends on x alone: the plan evaluates it after the branch (where changes only a dump's order).
    private PlanStep<T>? Shortcut(Residual<T> block) => block.Shortcut is { } s ? Chain([s], null) : null;

    private static IConvEpilogue<T>? Epilogue(Layer<T>? after) => (after as IActivationLayer<T>)?.Epilogue;
}

/// <summary>One step of a compiled inference plan.</summary>
/// <typeparam name="T">float or double.</typeparam>
internal abstract class PlanStep<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>True when the output is a buffer no one else reads (the next step may overwrite it).</summary>
    public abstract bool OwnsOutput { get; }

    /// <summary>The step's output for <paramref name="x"/>.</summary>
    public abstract DenseTensor<T> Run(DenseTensor<T> x, Pass<T> pass);

    /// <summary>What the step computes, for a profile (steps of one description are added up).</summary>
    public abstract string Describe(DenseTensor<T> x);
}

/// <summary>
/// Time per step description, gathered while <see cref="On"/> (<see cref="InferencePlan{T}.Profile"/>): the steps that
/// compute (convolutions, layers, a residual block's sum) time themselves; containers only pass on.
/// </summary>
internal sealed class PlanProfile
{
    /// <summary>Whether the steps time themselves.</summary>
    public bool On { get; set; }

    /// <summary>Seconds and calls by description, for the forward being timed.</summary>
    public Dictionary<string, (double Seconds, int Calls)> Steps { get; } = new(StringComparer.Ordinal);

    /// <summary>Adds one call of <paramref name="what"/> that started at <paramref name="start"/> (a Stopwatch timestamp).</summary>
    public void Add(string what, long start)
    {
        double s = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds;
        Steps[what] = Steps.TryGetValue(what, out var t) ? (t.Seconds + s, t.Calls + 1) : (s, 1);
    }
}

/// <summary>A layer of the tree run as it is (its buffers from the pass's cache).</summary>
internal sealed class LayerStep<T>(Layer<T> layer, bool ownsOutput) : PlanStep<T> where T : IFloatingPointIeee754<T>
{
    public override bool OwnsOutput => ownsOutput;

    public override DenseTensor<T> Run(DenseTensor<T> x, Pass<T> pass) => layer.Forward(x, pass);

    public override string Describe(DenseTensor<T> x) => $"{layer.Kind} {x.ShapeString}";
}

/// <summary>Steps run one after another.</summary>
internal sealed class ChainStep<T>(List<PlanStep<T>> steps, PlanProfile profile) : PlanStep<T> where T : IFloatingPointIeee754<T>
{
    private readonly PlanStep<T>[] _steps = [.. steps];

    public override bool OwnsOutput => _steps.Length > 0 && _steps[^1].OwnsOutput;

    public override DenseTensor<T> Run(DenseTensor<T> x, Pass<T> pass)
    {
        foreach (var step in _steps)
        {
            if (!profile.On || step is ChainStep<T> or ResidualStep<T>) { x = step.Run(x, pass); continue; }
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            string what = step.Describe(x);
            x = step.Run(x, pass);
            profile.Add(what, start);
        }
        return x;
    }

    public override string Describe(DenseTensor<T> x) => "chain";
}

/// <summary>
/// A convolution with the following eval-mode BatchNorm folded into its weights and bias and the following activation
/// as the kernel's epilogue. The folded parameters are computed in float64 from the layers' own values and rounded
/// once: w' = w·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β. Its output buffer is allocated once and overwritten by every
/// forward; the kernel keeps its packing of the (fixed) weights between forwards.
/// </summary>
internal sealed class ConvStep<T> : PlanStep<T> where T : IFloatingPointIeee754<T>
{
    private readonly Conv2dGeometry _geometry;
    private readonly IConvEpilogue<T>? _epilogue;
    private readonly DenseTensor<T> _weight, _bias;
    private readonly ConvWeightPack _pack = new(), _winograd = new();
    private DenseTensor<T>? _output;

    public ConvStep(Conv2dLayer<T> conv, BatchNorm2dLayer<T>? bn, IActivationLayer<T>? activation)
    {
        _geometry = conv.Geometry;
        _epilogue = activation?.Epilogue;
        int o = _geometry.OutChannels, per = conv.Weight.Value.Length / o;
        _weight = conv.Weight.Value.ZerosLike();
        _bias = new DenseTensor<T>(o);
        for (int c = 0; c < o; c++)
        {
            double b = conv.Bias is null ? 0 : double.CreateChecked(conv.Bias.Value.Data[c]), scale = 1;
            if (bn is not null)
            {
                double var = double.CreateChecked(bn.RunningVar.Value.Data[c]);
                if (!(var >= 0)) throw new ArgumentException($"{bn.DisplayName}: running_var[{c}] = {var} cannot be folded");
                scale = double.CreateChecked(bn.Weight.Value.Data[c]) / Math.Sqrt(var + bn.Eps);
                b = (b - double.CreateChecked(bn.RunningMean.Value.Data[c])) * scale + double.CreateChecked(bn.Bias.Value.Data[c]);
            }
            for (int i = 0; i < per; i++)
                _weight.Data[c * per + i] = T.CreateChecked(double.CreateChecked(conv.Weight.Value.Data[c * per + i]) * scale);
            _bias.Data[c] = T.CreateChecked(b);
        }
        Source = conv.DisplayName;
    }

    /// <summary>The module path of the convolution it replaces (for messages).</summary>
    public string Source { get; }

    public override bool OwnsOutput => true;

    public override string Describe(DenseTensor<T> x)
    {
        var g = _geometry;
        return $"conv {g.InChannels}->{g.OutChannels} {g.Kernel.H}x{g.Kernel.W}/{g.Stride.H}" + (g.Groups > 1 ? $" g{g.Groups}" : "")
            + $" at {x.Dim(2)}x{x.Dim(3)}" + (_epilogue is null ? "" : " +act");
    }

    public override DenseTensor<T> Run(DenseTensor<T> x, Pass<T> pass)
    {
        if (x.Rank != 4 || x.Dim(1) != _geometry.InChannels)
            throw new ShapeMismatchException(Source + " input", $"[N, {_geometry.InChannels}, H, W]", x.ShapeArray());
        var (ho, wo) = _geometry.OutputSize(x.Dim(2), x.Dim(3));
        ReadOnlySpan<int> shape = [x.Dim(0), _geometry.OutChannels, ho, wo];
        var output = _output is { } t && t.HasShape(shape) ? t : _output = new DenseTensor<T>(shape.ToArray());
        // Winograd F(2×2, 3×3) where the plan allows it and it is faster (docs/inference.md: its speed and its error).
        if (pass.Winograd && Conv2d.WinogradPays<T>(_geometry, x.Dim(2), x.Dim(3)))
            Conv2d.ForwardWinograd(x, _weight, _bias, _geometry, output, _epilogue, _winograd);
        else Conv2d.Forward(x, _weight, _bias, _geometry, output, _epilogue, _pack);
        return output;
    }
}

/// <summary>
/// A residual block: the branch, the shortcut, then y = after(h + shortcut) — in place in the branch's output when it
/// is the branch's own buffer, with the activation applied to each chunk right after its addition; or, for a branch
/// ending in SE, the branch up to the SE, its gate s, then y = after(h·s + shortcut) in one pass per (n, c) plane: the
/// operations of the unfused blocks in their order.
/// </summary>
internal sealed class ResidualStep<T>(Residual<T> block, ChainStep<T> branch, SqueezeExcite<T>? se, PlanStep<T>? shortcut,
    IConvEpilogue<T>? epilogue) : PlanStep<T> where T : IFloatingPointIeee754<T>
{
    public override bool OwnsOutput => block.Sum;

    /// <summary>Where the block's own work (the SE gate, the sum and its activation) is timed, or null.</summary>
    public PlanProfile? Profile { get; init; }

    public override string Describe(DenseTensor<T> x) =>
        se is not null ? $"{se.Kind} gate + scale + residual sum {x.ShapeString}" : $"residual sum {x.ShapeString}";

    public override DenseTensor<T> Run(DenseTensor<T> x, Pass<T> pass)
    {
        var h = branch.Run(x, pass);
        var sc = block.Sum ? shortcut?.Run(x, pass) ?? x : x;
        if (Profile is not { On: true } profile) return Tail(x, h, sc, pass);
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        string what = Describe(h);
        var y = Tail(x, h, sc, pass);
        profile.Add(what, start);
        return y;
    }

    private DenseTensor<T> Tail(DenseTensor<T> x, DenseTensor<T> h, DenseTensor<T> sc, Pass<T> pass)
    {
        var s = se?.Gate(h, pass);
        if (!block.Sum) return After(h, pass);
        if (!h.HasShape(sc.Shape)) throw new ShapeMismatchException(block.DisplayName + " residual sum", h.ShapeString, sc.ShapeArray());
        if (s is not null)
            Compute.For(h.Dim(0) * h.Dim(1), new ScaleAddPlane { H = h.Data, S = s.Data, Shortcut = sc.Data, Plane = h.Dim(2) * h.Dim(3), After = epilogue });
        else if (branch.OwnsOutput && !ReferenceEquals(h, x) && !ReferenceEquals(h, sc))
            Chunks.For(h.Data.Length, new AddInPlace { H = h.Data, S = sc.Data, After = epilogue });
        else return After(TensorMath.Add(h, sc, block.DisplayName + " residual sum"), pass);
        return epilogue is null ? After(h, pass) : h;
    }

    private DenseTensor<T> After(DenseTensor<T> v, Pass<T> pass) => block.After?.Forward(v, pass) ?? v;

    /// <summary>One (n, c) plane: h = after(h·s[p] + shortcut).</summary>
    private struct ScaleAddPlane : IForBody
    {
        public T[] H, S, Shortcut;
        public int Plane;
        public IConvEpilogue<T>? After;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int p)
        {
            int o = p * Plane;
            var h = H.AsSpan(o, Plane);
            SpanArithmetic.ScaleAdd(h, S[p], Shortcut.AsSpan(o, Plane));
            After?.Apply(h);
        }
    }

    /// <summary>h += s over a chunk, then after.</summary>
    private struct AddInPlace : Chunks.IBody
    {
        public T[] H, S;
        public IConvEpilogue<T>? After;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int lo, int hi)
        {
            var h = H.AsSpan(lo, hi - lo);
            SpanArithmetic.Add(h, S.AsSpan(lo, hi - lo));
            After?.Apply(h);
        }
    }
}
