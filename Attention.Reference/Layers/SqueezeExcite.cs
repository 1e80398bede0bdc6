using Attention.Reference.Ops;

namespace Attention.Reference.Layers;

/// <summary>The SE gate: the paper's sigmoid, or hard-sigmoid ReLU6(v + 3)/6 (MobileNetV3, timm's EffectiveSE).</summary>
public enum SeGate
{
    /// <summary>σ(v) = 1 / (1 + exp(−v)), Eq. (act.1).</summary>
    Sigmoid,

    /// <summary>ReLU6(v + 3) / 6, Eq. (act.5); derivative 0 at exactly ±3.</summary>
    HardSigmoid,

    /// <summary>tanh(v) (the SENet paper's excitation ablation, Table 13); derivative 1 − s² from the output.</summary>
    Tanh,

    /// <summary>relu(v) (the same ablation); relu'(0) = 0.</summary>
    Relu,
}

/// <summary>The SE squeeze: global average (the paper) or global max (the paper's ablation).</summary>
public enum SePool
{
    /// <summary>Global average pooling, Eq. (se.1).</summary>
    Avg,

    /// <summary>Global max pooling, Eq. (se.2); the gradient goes to the first maximal index.</summary>
    Max,
}

/// <summary>Hyper-parameters of the paper's Squeeze-and-Excitation module (<see cref="SqueezeExcite{T}.Paper"/>).</summary>
public sealed record SeOptions
{
    /// <summary>C, the number of channels of x.</summary>
    public int Channels { get; }

    /// <summary>The hidden width (C // r in the paper).</summary>
    public int Hidden { get; }

    /// <summary>Whether fc1 and fc2 have biases (timm, torchvision: yes; the paper's equations: no).</summary>
    public bool Bias { get; }

    /// <summary>The gate.</summary>
    public SeGate Gate { get; }

    /// <summary>The squeeze.</summary>
    public SePool Pool { get; }

    /// <summary>Creates and validates the options.</summary>
    /// <exception cref="ArgumentOutOfRangeException">channels or hidden below 1.</exception>
    public SeOptions(int channels, int hidden, bool bias = true, SeGate gate = SeGate.Sigmoid, SePool pool = SePool.Avg)
    {
        if (channels < 1) throw new ArgumentOutOfRangeException(nameof(channels), channels, "SE channels must be at least 1.");
        if (hidden < 1) throw new ArgumentOutOfRangeException(nameof(hidden), hidden, "SE hidden width must be at least 1.");
        if (!Enum.IsDefined(gate)) throw new ArgumentOutOfRangeException(nameof(gate), gate, "Unknown SE gate.");
        if (!Enum.IsDefined(pool)) throw new ArgumentOutOfRangeException(nameof(pool), pool, "Unknown SE pool.");
        Channels = channels;
        Hidden = hidden;
        Bias = bias;
        Gate = gate;
        Pool = pool;
    }

    /// <summary>The case.json name of a gate.</summary>
    public static string NameOf(SeGate gate) => gate switch
    {
        SeGate.Sigmoid => "sigmoid",
        SeGate.HardSigmoid => "hard_sigmoid",
        SeGate.Tanh => "tanh",
        _ => "relu",
    };

    /// <summary>The case.json name of a squeeze.</summary>
    public static string NameOf(SePool pool) => pool == SePool.Avg ? "avg" : "max";
}

/// <summary>
/// Squeeze-and-Excitation, every variant as one layer built from named children (docs/derivations/se.md): the squeeze
/// z = mean_{h,w}(x) (Eq. (se.1); or max, Eq. (se.2)), the excitation s = excitation(z) — the children in order — and
/// y = x·s broadcast over H×W (Eq. (se.7)). The factories give the reference codes' trees: the paper's
/// (<see cref="Paper"/>: <c>fc1</c>, <c>fc2</c> as <c>nn.Linear</c>, ReLU and the gate as functionals, every ablation
/// option of <see cref="SeOptions"/>), timm's <c>SEModule</c> (<see cref="Timm"/>), the legacy SENet's
/// (<see cref="Legacy"/>) and torchvision's <c>SqueezeExcitation</c> (<see cref="Torchvision"/>).
/// <para>
/// Backward (Eqs. (se.8)–(se.18)): ∂s[n, c] = Σ_{h,w} ∂y·x (h, w ascending), back through the children in reverse
/// to ∂z, then ∂x = ∂y·s + ∂z / (H·W) (or ∂z at the first maximal index for the max squeeze). The squeeze, the scale
/// and the plane sums are <see cref="GlobalPool"/>'s and <see cref="ChannelScale"/>'s: one sequential chain per plane,
/// vectorised across planes (on the fast setting the blocked order, <see cref="Kernels.SumOrder.Blocked"/>), the same
/// bits for any thread count and vector width. The paper's tree records every named intermediate of the derivation for
/// <c>attention-ref trace</c> (se.1–se.18).
/// </para>
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class SqueezeExcite<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    private readonly List<Layer<T>> _excitation = new();
    private readonly Layer<T>? _squeeze;
    private readonly SePool _pool;
    private readonly bool _flat;

    /// <summary>Creates the module from its excitation children, in order; the squeeze is the built-in mean.</summary>
    /// <param name="kind">The class name (<c>SEModule</c>).</param>
    /// <param name="excitation">The named children applied to the squeezed [N, C, 1, 1] tensor.</param>
    public SqueezeExcite(string kind, IEnumerable<(string Name, Layer<T> Layer)> excitation)
    {
        Kind = kind;
        foreach (var (name, layer) in excitation) _excitation.Add(Child(name, layer));
    }

    /// <summary>
    /// Creates the module from children registered in <paramref name="children"/>' order and run in
    /// <paramref name="run"/>'s: the first run element is the squeeze (a pooling child, as torchvision's
    /// <c>avgpool</c>), the rest the excitation.
    /// </summary>
    public SqueezeExcite(string kind, IEnumerable<(string Name, Layer<T> Layer)> children, IReadOnlyList<Layer<T>> run)
    {
        Kind = kind;
        foreach (var (name, layer) in children) Child(name, layer);
        _squeeze = run[0];
        _excitation.AddRange(run.Skip(1));
    }

    private SqueezeExcite(SeOptions options)
    {
        Kind = "SqueezeExcitation";
        Options = options;
        _pool = options.Pool;
        _flat = true;
        var fc1 = Child("fc1", new Linear<T>(options.Channels, options.Hidden, options.Bias)
            { TraceGradients = (("se.14", "dW1"), ("se.15", "db1")) });
        var fc2 = Child("fc2", new Linear<T>(options.Hidden, options.Channels, options.Bias)
            { TraceGradients = (("se.10", "dW2"), ("se.11", "db2")) });
        static TraceTap<T> Tap(string fwdEq, string fwd, string bwdEq, string bwd) => new((fwdEq, fwd), (bwdEq, bwd));
        _excitation.AddRange(
        [
            Tap(options.Pool == SePool.Avg ? "se.1" : "se.2", "z", "se.16", "dz"),
            fc1, Tap("se.3", "h", "se.13", "dh"),
            Act.Relu<T>(), Tap("se.4", "r", "se.12", "dr"),
            fc2, Tap("se.5", "e", "se.9", "de"),
            GateLayer(options.Gate), Tap("se.6", "s", "se.8", "ds"),
        ]);
    }

    /// <summary>
    /// The paper's module with the SENet ablation options (<see cref="SeOptions"/>: average or max squeeze, sigmoid,
    /// hard-sigmoid, tanh or ReLU gate, with or without biases): children <c>fc1</c> [hidden, C] and <c>fc2</c>
    /// [C, hidden] (<c>nn.Linear</c>; a 1x1 convolution's [out, in, 1, 1] loads too), on the squeeze flattened to
    /// [N, C]; ReLU and the gate are functionals.
    /// </summary>
    public static SqueezeExcite<T> Paper(SeOptions options) =>
        new(options ?? throw new ArgumentNullException(nameof(options)));

    /// <summary>The paper module's options, or null for the trees of timm, torchvision and the legacy SENet.</summary>
    public SeOptions? Options { get; }

    /// <summary>The gate as a functional layer: Eq. (act.1) sigmoid, Eq. (act.5) hard-sigmoid, tanh or ReLU.</summary>
    private static Layer<T> GateLayer(SeGate gate) => gate switch
    {
        SeGate.Sigmoid => Act.Sigmoid<T>(),
        SeGate.HardSigmoid => Act.HardSigmoidSe<T>(),
        SeGate.Tanh => Act.Tanh<T>(),
        _ => Act.Relu<T>(),
    };

    /// <summary>
    /// torchvision's <c>ops.SqueezeExcitation(input_channels, squeeze_channels, activation, scale_activation)</c>:
    /// children <c>avgpool</c>, <c>fc1</c>, <c>fc2</c>, <c>activation</c>, <c>scale_activation</c> (registered in that
    /// order, run as avgpool → fc1 → activation → fc2 → scale_activation); y = scale · x.
    /// </summary>
    public static SqueezeExcite<T> Torchvision(int channels, int squeeze, Layer<T> activation, Layer<T> scaleActivation)
    {
        var avgpool = new AdaptiveAvgPool2d<T>();
        var fc1 = new Linear<T>(channels, squeeze, true, convForm: true);
        var fc2 = new Linear<T>(squeeze, channels, true, convForm: true);
        return new SqueezeExcite<T>("SqueezeExcitation",
            [("avgpool", avgpool), ("fc1", fc1), ("fc2", fc2), ("activation", activation), ("scale_activation", scaleActivation)],
            [avgpool, fc1, activation, fc2, scaleActivation]);
    }

    /// <summary>
    /// timm's <c>SEModule(channels, rd_ratio=1/16, rd_divisor=8)</c>: hidden width
    /// <c>make_divisible(C/16, 8, round_limit=0)</c>, 1x1 convolutions with bias, Identity norm, ReLU, sigmoid gate.
    /// </summary>
    public static SqueezeExcite<T> Timm(int channels, int? hidden = null)
    {
        int rd = hidden ?? MakeDivisible(channels / 16.0, 8, 0);
        return new SqueezeExcite<T>("SEModule",
        [
            ("fc1", new Linear<T>(channels, rd, true, convForm: true)),
            ("bn", new Identity<T>()),
            ("act", Act.Relu<T>()),
            ("fc2", new Linear<T>(rd, channels, true, convForm: true)),
            ("gate", Act.Sigmoid<T>()),
        ]);
    }

    /// <summary>timm senet.py's <c>SEModule(channels, reduction)</c>: hidden C // reduction, children fc1, relu, fc2, sigmoid.</summary>
    public static SqueezeExcite<T> Legacy(int channels, int reduction)
    {
        int rd = channels / reduction;
        return new SqueezeExcite<T>("SEModule",
        [
            ("fc1", new Linear<T>(channels, rd, true, convForm: true)),
            ("relu", Act.Relu<T>()),
            ("fc2", new Linear<T>(rd, channels, true, convForm: true)),
            ("sigmoid", Act.Sigmoid<T>()),
        ]);
    }

    /// <summary>timm's <c>make_divisible(v, divisor, min_value=None, round_limit)</c> (torchvision's <c>_make_divisible</c>).</summary>
    public static int MakeDivisible(double v, int divisor, double roundLimit = 0.9, int? minValueOrNull = null)
    {
        int minValue = minValueOrNull ?? divisor;
        int newV = Math.Max(minValue, (int)(v + divisor / 2.0) / divisor * divisor);
        if (newV < roundLimit * v) newV += divisor;
        return newV;
    }

    /// <inheritdoc />
    public override string Kind { get; }

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        RequireNchw(input, Options?.Channels);
        if (input[2] == 0 || input[3] == 0)
            throw new ShapeMismatchException(InputName, "[N, C, H, W] with H·W ≥ 1 (the squeeze of an empty plane is undefined)", input);
        int[] squeezed = [input[0], input[1], 1, 1];
        var s = _squeeze?.InferShape(input, plan) ?? (_flat ? [input[0], input[1]] : squeezed);
        foreach (var layer in _excitation) s = layer.InferShape(s, plan);
        int[] expected = _flat ? [input[0], input[1]] : squeezed;
        if (!s.AsSpan().SequenceEqual(expected)) throw new ShapeMismatchException(DisplayName + " gate", ShapeUtil.Format(expected), s);
        return input;
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        var s = Gate(x, pass, out int[]? argMax);
        // Eq. (se.7): y = x · s (in an inference plan, into x when this block owns it).
        var y = pass.MayOverwriteInput(this) ? x : pass.Uninitialized(this, "y", x.Shape);
        ChannelScale.Forward(x, s.Data, y);
        if (Options is not null) pass.Trace?.Forward("se.7", "y", y);
        Save(pass, (x, s, argMax));
        return y;
    }

    /// <summary>
    /// Eqs. (se.1)–(se.6): the gate s [N, C, 1, 1] for x, without scaling x (an inference plan's residual block applies
    /// y = act(x·s + shortcut) in one pass, the same operations in the same order).
    /// </summary>
    internal DenseTensor<T> Gate(DenseTensor<T> x, Pass<T> pass) => Gate(x, pass, out _);

    private DenseTensor<T> Gate(DenseTensor<T> x, Pass<T> pass, out int[]? argMax)
    {
        if (x.Rank != 4) ShapeUtil.RequireRank(x, DisplayName + " input", 4, "N, C, H, W"); // the name is built only on failure
        int n = x.Dim(0), c = x.Dim(1);
        argMax = null;
        DenseTensor<T> z;
        if (_squeeze is not null) z = _squeeze.Forward(x, pass);
        else if (_pool == SePool.Max)
        {
            // Eq. (se.2): the max and its first index, scanned as PyTorch's CPU kernel.
            (z, argMax) = GlobalPool.MaxForward(x);
        }
        else
        {
            // Eq. (se.1): z = mean over (h, w), a sequential sum divided once by H·W.
            z = pass.Uninitialized(this, "z", [n, c, 1, 1]);
            GlobalPool.AvgForward(x, z, pass.SumOrder);
        }
        var s = _flat ? z.Reshape(n, c) : z.Rank == 4 ? z : z.Reshape(n, c, 1, 1);
        foreach (var layer in _excitation) s = layer.Forward(s, pass);
        if (s.Length != n * c || s.Rank != (_flat ? 2 : 4) || s.Dim(1) != c)
            throw new ShapeMismatchException(DisplayName + " gate", _flat ? $"[{n}, {c}]" : $"[{n}, {c}, 1, 1]", s.ShapeArray());
        pass.OnGate?.Invoke(DisplayName, s.Reshape(n, c));
        return _flat ? s.Reshape(n, c, 1, 1) : s;
    }

    /// <summary>The excitation's layers in run order (an inference plan's compiler reads it).</summary>
    internal IReadOnlyList<Layer<T>> Excitation => _excitation;

    /// <summary>
    /// The squeeze (GlobalAveragePool, or MaxPool over the whole plane), Flatten for the paper's nn.Linear layers, the
    /// excitation layers, Reshape back to [N, C, 1, 1], then Mul(x, s).
    /// </summary>
    protected override string OnExport(IGraphWriter<T> writer, string input)
    {
        var shape = writer.Shape(input);
        int n = shape[0], c = shape[1];
        string s = _squeeze?.Export(writer, input) ?? (_pool == SePool.Avg
            ? writer.Node(this, "GlobalAveragePool", [input], [n, c, 1, 1])
            : writer.Node(this, "MaxPool", [input], [n, c, 1, 1], new Dictionary<string, object>
                { ["kernel_shape"] = new[] { shape[2], shape[3] }, ["strides"] = new[] { shape[2], shape[3] } }));
        if (_flat) s = writer.Node(this, "Flatten", [s], [n, c], new Dictionary<string, object> { ["axis"] = 1L });
        foreach (var layer in _excitation) s = layer.Export(writer, s);
        if (_flat) s = writer.Node(this, "Reshape", [s, writer.Int64s(n, c, 1, 1)], [n, c, 1, 1]);
        return writer.Node(this, "Mul", [input, s], shape);
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        var (x, s, argMax) = Restore<(DenseTensor<T>, DenseTensor<T>, int[]?)>(pass);
        ShapeUtil.Require(dy, Path is "" ? "y.grad" : DisplayName + " output gradient", x.ShapeArray());
        int n = x.Dim(0), c = x.Dim(1), plane = x.Dim(2) * x.Dim(3);
        // Eq. (se.8): ∂s = Σ_{h,w} ∂y·x.
        var ds = new DenseTensor<T>(_flat ? [n, c] : [n, c, 1, 1]);
        ChannelScale.PlaneDots(dy, x, ds.Data, pass.SumOrder);
        var dz = ds;
        for (int i = _excitation.Count - 1; i >= 0; i--) dz = _excitation[i].Backward(dz, pass);
        var dx = pass.Uninitialized(this, "dx", x.Shape);
        if (_squeeze is not null && _squeeze is not AdaptiveAvgPool2d<T>)
        {
            ChannelScale.InputGradient(dy, s.Data, null, dx);
            // Another pooling child: its own adjoint, added once per element.
            var dpool = _squeeze.Backward(dz, pass).Data;
            var dxd = dx.Data;
            for (int i = 0; i < dxd.Length; i++) dxd[i] += dpool[i];
        }
        else if (argMax is null)
        {
            // Eq. (se.17): ∂x = ∂y·s + ∂z/(H·W) — also for torchvision's avgpool child, whose adjoint (dz/(H·W) broadcast)
            // is added here in one pass instead of through an x-sized tensor of its own.
            _squeeze?.DropSaved(pass);
            var add = new T[n * c];
            T count = T.CreateChecked(plane);
            for (int p = 0; p < add.Length; p++) add[p] = dz.Data[p] / count;
            ChannelScale.InputGradient(dy, s.Data, add, dx);
        }
        else
        {
            // Eq. (se.18): ∂x = ∂y·s, plus ∂z at each plane's first maximal index.
            ChannelScale.InputGradient(dy, s.Data, null, dx);
            GlobalPool.MaxBackwardAccumulate(dz.Reshape(n, c), argMax, dx);
        }
        if (Options is not null) pass.Trace?.Backward(argMax is null ? "se.17" : "se.18", "dx", dx);
        return dx;
    }
}
