using System.Numerics;
using Attention.Reference.Cases;
using Attention.Reference.Layers;

namespace Attention.Reference.Models;

/// <summary>
/// A model users know by name: its constructor keyword arguments and how to build its layer tree. Adding a
/// model is one subclass (a factory) and one line in <see cref="ModelZoo"/>.
/// </summary>
public abstract class ModelFactory
{
    /// <summary>The name (<c>seresnet50</c>), as timm / torchvision / the authors call it.</summary>
    public abstract string Name { get; }

    /// <summary>The keyword arguments the constructor takes (case.json keys besides module and training).</summary>
    public abstract IReadOnlyList<string> Kwargs { get; }

    /// <summary>Where the reference code lives, for docs and messages.</summary>
    public abstract string Source { get; }

    /// <summary>Builds the layer tree from keyword arguments (omitted ones take the constructor's defaults).</summary>
    public abstract Layer<T> Build<T>(CaseConfig kwargs) where T : IFloatingPointIeee754<T>;
}

/// <summary>The models, by name.</summary>
public static class ModelZoo
{
    private static readonly Dictionary<string, ModelFactory> Factories = new(StringComparer.Ordinal);

    static ModelZoo()
    {
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

    /// <summary>Every model, ordered by name.</summary>
    public static IEnumerable<ModelFactory> All => Factories.Values.OrderBy(f => f.Name, StringComparer.Ordinal);

    /// <summary>True when <paramref name="name"/> is a model.</summary>
    public static bool Contains(string name) => Factories.ContainsKey(name);

    /// <summary>The factory called <paramref name="name"/>.</summary>
    /// <exception cref="CaseFormatException">No such model.</exception>
    public static ModelFactory Get(string name) =>
        Factories.TryGetValue(name, out var f) ? f
        : throw new CaseFormatException($"unknown model '{name}'; known models: {string.Join(", ", All.Select(x => x.Name))}.");

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

    /// <summary>Builds the model a case.json names (keys: module, training, and the constructor's kwargs).</summary>
    public static Network<T> Create<T>(CaseConfig config) where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(config);
        var f = Get(config.Module);
        config.RejectUnknownKeys(["training", .. f.Kwargs]);
        try
        {
            return new Network<T>(f.Name, f.Build<T>(config));
        }
        catch (ArgumentException e) when (e is not Tensors.ShapeMismatchException)
        {
            throw new CaseFormatException($"{config.Source}: {e.Message}", e);
        }
    }
}

/// <summary>timm's <c>resnet50</c>, <c>seresnet50</c> and <c>seresnext50_32x4d</c>.</summary>
internal sealed class TimmResNetFactory(string name, int cardinality, int baseWidth, bool se) : ModelFactory
{
    public override string Name => name;
    public override IReadOnlyList<string> Kwargs => ["num_classes", "layers", "channels"];
    public override string Source => $"timm.create_model('{name}')";

    public override Layer<T> Build<T>(CaseConfig kw) =>
        ResNets.Timm<T>(kw.GetIntList("layers", [3, 4, 6, 3]), kw.GetIntList("channels", [64, 128, 256, 512]),
            kw.GetInt("num_classes", 1000), cardinality, baseWidth, se);
}

/// <summary>timm's <c>legacy_seresnet50</c> (senet.py).</summary>
internal sealed class LegacySeResNetFactory : ModelFactory
{
    public override string Name => "legacy_seresnet50";
    public override IReadOnlyList<string> Kwargs => ["num_classes"];
    public override string Source => "timm.create_model('legacy_seresnet50')";
    public override Layer<T> Build<T>(CaseConfig kw) => ResNets.LegacySeResNet<T>(kw.GetInt("num_classes", 1000));
}

/// <summary>The GCT authors' ResNet-50 (z-x-yang/GCT, PyTorch/resnet.py).</summary>
internal sealed class GctResNetFactory : ModelFactory
{
    public override string Name => "gct_resnet50";
    public override IReadOnlyList<string> Kwargs => [];
    public override string Source => "z-x-yang/GCT PyTorch/resnet.py ResNet(None)";
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
internal sealed class MobileNetV3Factory(bool large) : ModelFactory
{
    public override string Name => large ? "mobilenet_v3_large" : "mobilenet_v3_small";
    public override IReadOnlyList<string> Kwargs => ["num_classes", "width_mult", "reduced_tail", "dilated", "dropout"];
    public override string Source => $"torchvision.models.{Name}";

    public override Layer<T> Build<T>(CaseConfig kw)
    {
        Probability.Check(kw, "dropout", 0.2);
        return MobileNets.MobileNetV3<T>(large, kw.GetInt("num_classes", 1000), kw.GetDouble("width_mult", 1.0),
            kw.GetBool("reduced_tail", false), kw.GetBool("dilated", false));
    }
}

/// <summary>torchvision's <c>efficientnet_b0</c>, and the same builder with any width and depth multipliers.</summary>
internal sealed class EfficientNetFactory(bool b0) : ModelFactory
{
    public override string Name => b0 ? "efficientnet_b0" : "efficientnet";
    public override IReadOnlyList<string> Kwargs => b0
        ? ["num_classes", "dropout", "stochastic_depth_prob"]
        : ["width_mult", "depth_mult", "num_classes", "dropout", "stochastic_depth_prob"];
    public override string Source => b0 ? "torchvision.models.efficientnet_b0" : "torchvision _efficientnet_conf('efficientnet_b0', width_mult, depth_mult)";

    public override Layer<T> Build<T>(CaseConfig kw)
    {
        Probability.Check(kw, "dropout", 0.2);
        Probability.Check(kw, "stochastic_depth_prob", 0.2);
        return MobileNets.EfficientNet<T>(b0 ? 1.0 : kw.GetDouble("width_mult", 1.0), b0 ? 1.0 : kw.GetDouble("depth_mult", 1.0),
            kw.GetInt("num_classes", 1000));
    }
}

/// <summary>torchvision's <c>mobilenet_v2</c>.</summary>
internal sealed class MobileNetV2Factory : ModelFactory
{
    public override string Name => "mobilenet_v2";
    public override IReadOnlyList<string> Kwargs => ["num_classes", "width_mult", "dropout"];
    public override string Source => "torchvision.models.mobilenet_v2";

    public override Layer<T> Build<T>(CaseConfig kw)
    {
        Probability.Check(kw, "dropout", 0.2);
        return MobileNets.MobileNetV2<T>(kw.GetInt("num_classes", 1000), kw.GetDouble("width_mult", 1.0));
    }
}

/// <summary>The Coordinate Attention authors' MobileNetV2 (houqb/CoordAttention mbv2_ca.py).</summary>
internal sealed class Mbv2CaFactory : ModelFactory
{
    public override string Name => "mbv2_ca";
    public override IReadOnlyList<string> Kwargs => ["num_classes", "width_mult"];
    public override string Source => "houqb/CoordAttention mbv2_ca.py mbv2_ca(num_classes, width_mult)";
    public override Layer<T> Build<T>(CaseConfig kw) => MobileNets.Mbv2Ca<T>(kw.GetInt("num_classes", 1000), kw.GetDouble("width_mult", 1.0));
}

