using System.Diagnostics;
using Attention.Reference.Imaging;
using Attention.Reference.Layers;

namespace Attention.Reference.Models;

/// <summary>
/// Something runnable by name — a module (<c>conv2d</c>, <c>se</c>, <c>ca</c>, <c>gct</c>, …) or a whole network
/// (<c>seresnet50</c>): its constructor's keyword arguments, how to build its layer tree, the cases
/// <c>attention-ref pack</c> generates for it and, for networks, the image recipe of its published weights. A
/// <c>case.json</c> is <c>create_model(name, **kwargs)</c>: <c>{"module": NAME, ...kwargs}</c>. Adding a model is one
/// subclass (a factory) and one line in <see cref="ModelZoo"/>.
/// </summary>
public abstract class ModelFactory
{
    /// <summary>The name (<c>seresnet50</c>, <c>se</c>), as timm / torchvision / the authors call it.</summary>
    public abstract string Name { get; }

    /// <summary>The keys a case.json may hold besides <c>"module"</c>: the constructor's kwargs (and <c>training</c>).</summary>
    public abstract IReadOnlyList<string> Kwargs { get; }

    /// <summary>Where the reference code lives, for docs and messages.</summary>
    public abstract string Source { get; }

    /// <summary>True for whole networks: input [N, 3, H, W], output the logits; they dump every module's output.</summary>
    public virtual bool IsNetwork => false;

    /// <summary>How the published weights expect an image (networks), or null.</summary>
    public virtual ImageRecipe? Recipe => null;

    /// <summary>Builds the layer tree from keyword arguments (omitted ones take the constructor's defaults).</summary>
    /// <exception cref="CaseFormatException">A bad hyper-parameter.</exception>
    public abstract Layer<T> Build<T>(CaseConfig kwargs) where T : IFloatingPointIeee754<T>;

    /// <summary>Whether a case runs in training mode (the <c>"training"</c> key, false when absent).</summary>
    public virtual bool IsTraining(CaseConfig kwargs)
    {
        ArgumentNullException.ThrowIfNull(kwargs);
        return kwargs.Has("training") && kwargs.GetBool("training");
    }

    /// <summary>Cases covering every variant, for <c>attention-ref pack</c> (float64).</summary>
    public virtual IEnumerable<GeneratedCase> Generate(int seed) => [];

    /// <summary>Builds the model a case.json describes, refusing unknown keys and bad values by name.</summary>
    /// <exception cref="CaseFormatException">Unknown keys or bad hyper-parameters.</exception>
    public Network<T> Create<T>(CaseConfig config) where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(config);
        config.RejectUnknownKeys(Kwargs);
        try
        {
            return new Network<T>(Name, Build<T>(config));
        }
        catch (ArgumentException e) when (e is not ShapeMismatchException)
        {
            throw new CaseFormatException($"{config.Source}: {e.Message}", e);
        }
    }

    /// <summary>
    /// The one case runner: builds the tree, binds the state_dict by name (<see cref="StateDictBinder"/>), plans every
    /// module output (checked 64-bit, against the memory cap) before allocating, runs forward (and backward when the
    /// inputs hold <c>y.grad</c>), and returns the outputs named from the tree: <c>y</c>, <c>x.grad</c>,
    /// <c>&lt;name&gt;.grad</c> for every learnable parameter (in the shape the state_dict gave it), and in training
    /// mode the updated buffers. Float64 runs the oracle, float32 the fast path, unless the options say otherwise.
    /// Inputs are never modified.
    /// </summary>
    /// <exception cref="CaseFormatException">Unknown keys or bad hyper-parameters.</exception>
    /// <exception cref="ShapeMismatchException">A tensor's shape disagrees with the config.</exception>
    public TensorSet<T> Run<T>(CaseConfig config, TensorSet<T> inputs, TensorSet<T> parameters, RunOptions options)
        where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(options);
        var net = Create<T>(config);
        bool training = IsTraining(config);
        inputs.RejectUnknown(["x", "y.grad"]);
        var x = inputs.Get("x");
        ShapeUtil.RequireRank(x, "x", 4, "N, C, H, W");
        var dy = inputs.TryGet("y.grad");
        net.LoadStateDict(parameters);
        var plan = new ShapePlan();
        int[] outputShape;
        try
        {
            outputShape = net.Root.InferShape(x.ShapeArray(), plan);
        }
        catch (OverflowException e)
        {
            throw new ArgumentException($"{config.Source}: for x {x.ShapeString}, {e.Message}; check the sizes in the case " +
                $"({string.Join(", ", config.Keys.Where(k => k is not ("module" or "training" or "bias")))}).");
        }
        if (dy is not null) ShapeUtil.Require(dy, "y.grad", outputShape);
        long planned = checked(plan.Elements * (typeof(T) == typeof(float) ? 4 : 8) * (dy is null ? 1 : 2));
        long cap = options.MaxMemoryBytes ?? RunOptions.DefaultMaxMemory;
        if (planned > cap)
            throw new ArgumentException(
                $"{config.Source}: this run plans {RunOptions.Bytes(planned)} for {plan.Outputs} module outputs of x " +
                $"{x.ShapeString}, over the {RunOptions.Bytes(cap)} limit (--max-memory).");
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
}

/// <summary>The one registry: every runnable thing by name, modules and networks alike.</summary>
public static class ModelZoo
{
    private static readonly Dictionary<string, ModelFactory> Factories = new(StringComparer.Ordinal);

    static ModelZoo()
    {
        // Modules.
        Add(new Conv2dFactory());
        Add(new SeFactory());
        Add(new SeResNetBlockFactory());
        Add(new CaFactory());
        Add(new GctFactory());
        Add(new TorchvisionSeFactory());
        Add(new TimmSeFactory());
        Add(new CoordAttFactory());
        // Networks.
        Add(new TimmResNetFactory("resnet50", 1, 64, se: false));
        Add(new TimmResNetFactory("seresnet50", 1, 64, se: true));
        Add(new TimmResNetFactory("seresnext50_32x4d", 32, 4, se: true));
        Add(new LegacySeResNetFactory());
        Add(new GctResNetFactory());
        Add(new MobileNetV3Factory(large: true));
        Add(new MobileNetV3Factory(large: false));
        Add(new EfficientNetFactory(b0: true));
        Add(new EfficientNetFactory(b0: false));
        Add(new MobileNetV2Factory());
        Add(new Mbv2CaFactory());
    }

    private static void Add(ModelFactory f) => Factories.Add(f.Name, f);

    /// <summary>Every entry, ordered by name.</summary>
    public static IEnumerable<ModelFactory> All => Factories.Values.OrderBy(f => f.Name, StringComparer.Ordinal);

    /// <summary>The whole networks, ordered by name.</summary>
    public static IEnumerable<ModelFactory> Networks => All.Where(f => f.IsNetwork);

    /// <summary>True when <paramref name="name"/> is an entry.</summary>
    public static bool Contains(string name) => Factories.ContainsKey(name);

    /// <summary>The factory called <paramref name="name"/>.</summary>
    /// <exception cref="CaseFormatException">No such entry.</exception>
    public static ModelFactory Get(string name, string source = "case.json") =>
        Factories.TryGetValue(name, out var f) ? f
        : throw new CaseFormatException($"{source}: unknown module '{name}'; known modules: {string.Join(", ", All.Select(x => x.Name))}.");

    /// <summary>The network called <paramref name="name"/> (for <c>infer</c> and <c>bench net</c>).</summary>
    /// <exception cref="ArgumentException">No such network.</exception>
    public static ModelFactory GetNetwork(string name) =>
        Factories.TryGetValue(name, out var f) && f.IsNetwork ? f
        : throw new ArgumentException($"unknown model '{name}'; known models: {string.Join(", ", Networks.Select(x => x.Name))}.");

    /// <summary>
    /// Builds a model with keyword arguments given as (name, value) pairs (values: int, double, bool, string,
    /// int[]); unknown keyword arguments are refused.
    /// </summary>
    /// <example><code>
    /// var net = ModelZoo.Create&lt;double&gt;("seresnet50", ("num_classes", 10));
    /// net.LoadStateDict("seresnet50.safetensors");
    /// var y = net.Forward(x);
    /// </code></example>
    public static Network<T> Create<T>(string name, params (string Key, object Value)[] kwargs) where T : IFloatingPointIeee754<T> =>
        Create<T>(CaseConfig.Create(name, kwargs));

    /// <summary>Builds the model a case.json names (keys: module and the constructor's kwargs).</summary>
    public static Network<T> Create<T>(CaseConfig config) where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(config);
        return Get(config.Module, config.Source).Create<T>(config);
    }
}

/// <summary>
/// A whole network: <c>case.json</c> is <c>{"module": NAME, "training": BOOL, ...kwargs}</c>; <c>params</c> holds the
/// full state_dict; inputs hold <c>x</c> [N, 3, H, W] and optionally <c>y.grad</c> [N, classes].
/// </summary>
public abstract class NetworkFactory : ModelFactory
{
    /// <summary>The constructor's keyword arguments.</summary>
    protected abstract IReadOnlyList<string> ConstructorKwargs { get; }

    /// <inheritdoc />
    public sealed override IReadOnlyList<string> Kwargs => ["training", .. ConstructorKwargs];

    /// <inheritdoc />
    public override bool IsNetwork => true;

    /// <summary>How the published weights expect an image.</summary>
    public abstract override ImageRecipe Recipe { get; }

    /// <summary>torchvision's IMAGENET1K_V1 weights: Resize 256 bilinear, CenterCrop 224.</summary>
    protected static ImageRecipe TorchvisionV1(string name) => new(224, 0.875, Interpolation.Bilinear, $"torchvision {name} IMAGENET1K_V1 weights");

    /// <summary>The authors' ImageNet evaluation (Resize 256, CenterCrop 224).</summary>
    protected static ImageRecipe AuthorsEvaluation(string name) =>
        new(224, 0.875, Interpolation.Bilinear, $"{name}: the authors' ImageNet evaluation (Resize 256, CenterCrop 224)");

    /// <summary>
    /// Two small cases (eval and training) for models whose constructor can shrink them (timm's ResNets:
    /// <c>layers</c> and <c>channels</c>; the mobile networks: <c>width_mult</c> and <c>depth_mult</c>); none for the
    /// fixed-size ones (legacy_seresnet50, gct_resnet50, efficientnet_b0), whose float64 state_dicts are tens to
    /// hundreds of MB.
    /// </summary>
    public override IEnumerable<GeneratedCase> Generate(int seed)
    {
        var shrink = new List<(string, object)> { ("num_classes", 5) };
        if (Kwargs.Contains("channels"))
        {
            int[] channels = Name.Contains("resnext", StringComparison.Ordinal) ? [16, 16, 16, 16] : [4, 8, 8, 16];
            shrink.AddRange([("layers", new[] { 1, 1, 1, 1 }), ("channels", channels)]);
        }
        else if (Kwargs.Contains("width_mult"))
        {
            shrink.Add(("width_mult", 0.25));
            if (Kwargs.Contains("depth_mult")) shrink.Add(("depth_mult", 0.25));
        }
        else yield break;
        foreach (bool training in new[] { false, true })
        {
            var config = CaseConfig.Create(Name, [("training", training), .. shrink]);
            var net = Create<double>(config);
            int caseSeed = seed * 1000 + Name.Length * 2 + (training ? 1 : 0);
            yield return new GeneratedCase($"{Name}_{(training ? "train" : "eval")}", config,
                RandomWeights.Inputs(2, 32, 5, caseSeed), RandomWeights.StateDict(net, caseSeed));
        }
    }
}

/// <summary>timm's <c>resnet50</c>, <c>seresnet50</c> and <c>seresnext50_32x4d</c>.</summary>
internal sealed class TimmResNetFactory(string name, int cardinality, int baseWidth, bool se) : NetworkFactory
{
    public override string Name => name;
    protected override IReadOnlyList<string> ConstructorKwargs => ["num_classes", "layers", "channels"];
    public override string Source => $"timm.create_model('{name}')";
    // timm 1.0 default pretrained tags (resnet50.a1_in1k, seresnet50.a1_in1k, seresnext50_32x4d.racm_in1k): the
    // "ResNet strikes back" recipes evaluate bicubic at crop_pct 0.95.
    public override ImageRecipe Recipe => new(224, 0.95, Interpolation.Bicubic, $"timm {name} (default pretrained tag)");

    public override Layer<T> Build<T>(CaseConfig kw) =>
        ResNets.Timm<T>(kw.GetIntList("layers", [3, 4, 6, 3]), kw.GetIntList("channels", [64, 128, 256, 512]),
            kw.GetInt("num_classes", 1000), cardinality, baseWidth, se);
}

/// <summary>timm's <c>legacy_seresnet50</c> (senet.py).</summary>
internal sealed class LegacySeResNetFactory : NetworkFactory
{
    public override string Name => "legacy_seresnet50";
    protected override IReadOnlyList<string> ConstructorKwargs => ["num_classes"];
    public override string Source => "timm.create_model('legacy_seresnet50')";
    public override ImageRecipe Recipe => new(224, 0.875, Interpolation.Bilinear, "timm legacy_seresnet50.in1k");
    public override Layer<T> Build<T>(CaseConfig kw) => ResNets.LegacySeResNet<T>(kw.GetInt("num_classes", 1000));
}

/// <summary>The GCT authors' ResNet-50 (z-x-yang/GCT, PyTorch/resnet.py).</summary>
internal sealed class GctResNetFactory : NetworkFactory
{
    public override string Name => "gct_resnet50";
    protected override IReadOnlyList<string> ConstructorKwargs => [];
    public override string Source => "z-x-yang/GCT PyTorch/resnet.py ResNet(None)";
    public override ImageRecipe Recipe => AuthorsEvaluation(Name);
    public override Layer<T> Build<T>(CaseConfig kw) => ResNets.GctResNet50<T>();
}

/// <summary>Reads a probability kwarg (dropout, stochastic depth): validated, then unused (an identity here).</summary>
internal static class Probability
{
    public static void Check(CaseConfig kw, string key, double fallback)
    {
        double p = kw.GetDouble(key, fallback);
        if (!(p >= 0 && p <= 1)) throw new CaseFormatException($"{kw.Source}: '{key}' must be in [0, 1], got {p}.");
    }
}

/// <summary>torchvision's <c>mobilenet_v3_large</c> and <c>mobilenet_v3_small</c>.</summary>
internal sealed class MobileNetV3Factory(bool large) : NetworkFactory
{
    public override string Name => large ? "mobilenet_v3_large" : "mobilenet_v3_small";
    protected override IReadOnlyList<string> ConstructorKwargs => ["num_classes", "width_mult", "reduced_tail", "dilated", "dropout"];
    public override string Source => $"torchvision.models.{Name}";
    public override ImageRecipe Recipe => TorchvisionV1(Name);

    public override Layer<T> Build<T>(CaseConfig kw)
    {
        Probability.Check(kw, "dropout", 0.2);
        return MobileNets.MobileNetV3<T>(large, kw.GetInt("num_classes", 1000), kw.GetDouble("width_mult", 1.0),
            kw.GetBool("reduced_tail", false), kw.GetBool("dilated", false));
    }
}

/// <summary>torchvision's <c>efficientnet_b0</c>, and the same builder with any width and depth multipliers.</summary>
internal sealed class EfficientNetFactory(bool b0) : NetworkFactory
{
    public override string Name => b0 ? "efficientnet_b0" : "efficientnet";
    protected override IReadOnlyList<string> ConstructorKwargs => b0
        ? ["num_classes", "dropout", "stochastic_depth_prob"]
        : ["width_mult", "depth_mult", "num_classes", "dropout", "stochastic_depth_prob"];
    public override string Source => b0 ? "torchvision.models.efficientnet_b0" : "torchvision _efficientnet_conf('efficientnet_b0', width_mult, depth_mult)";
    public override ImageRecipe Recipe => new(224, 0.875, Interpolation.Bicubic, "torchvision EfficientNet_B0_Weights.IMAGENET1K_V1");

    public override Layer<T> Build<T>(CaseConfig kw)
    {
        Probability.Check(kw, "dropout", 0.2);
        Probability.Check(kw, "stochastic_depth_prob", 0.2);
        return MobileNets.EfficientNet<T>(b0 ? 1.0 : kw.GetDouble("width_mult", 1.0), b0 ? 1.0 : kw.GetDouble("depth_mult", 1.0),
            kw.GetInt("num_classes", 1000));
    }
}

/// <summary>torchvision's <c>mobilenet_v2</c>.</summary>
internal sealed class MobileNetV2Factory : NetworkFactory
{
    public override string Name => "mobilenet_v2";
    protected override IReadOnlyList<string> ConstructorKwargs => ["num_classes", "width_mult", "dropout"];
    public override string Source => "torchvision.models.mobilenet_v2";
    public override ImageRecipe Recipe => TorchvisionV1(Name);

    public override Layer<T> Build<T>(CaseConfig kw)
    {
        Probability.Check(kw, "dropout", 0.2);
        return MobileNets.MobileNetV2<T>(kw.GetInt("num_classes", 1000), kw.GetDouble("width_mult", 1.0));
    }
}

/// <summary>The Coordinate Attention authors' MobileNetV2 (houqb/CoordAttention mbv2_ca.py).</summary>
internal sealed class Mbv2CaFactory : NetworkFactory
{
    public override string Name => "mbv2_ca";
    protected override IReadOnlyList<string> ConstructorKwargs => ["num_classes", "width_mult"];
    public override string Source => "houqb/CoordAttention mbv2_ca.py mbv2_ca(num_classes, width_mult)";
    public override ImageRecipe Recipe => AuthorsEvaluation(Name);
    public override Layer<T> Build<T>(CaseConfig kw) => MobileNets.Mbv2Ca<T>(kw.GetInt("num_classes", 1000), kw.GetDouble("width_mult", 1.0));
}

