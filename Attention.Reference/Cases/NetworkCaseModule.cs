using System.Numerics;
using Attention.Reference.Layers;
using Attention.Reference.Models;

namespace Attention.Reference.Cases;

/// <summary>
/// A network case: <c>case.json</c> is <c>{"module": NAME, "training": BOOL, ...kwargs}</c> with NAME a model of
/// <see cref="ModelZoo"/> and the kwargs its constructor's; <c>params</c> holds the full state_dict; inputs hold
/// <c>x</c> [N, 3, H, W] and optionally <c>y.grad</c> [N, classes].
/// </summary>
public sealed class NetworkCaseModule(ModelFactory factory) : LayerCaseModule
{
    /// <inheritdoc />
    public override string Name => factory.Name;

    /// <inheritdoc />
    public override IReadOnlyList<string> ConfigKeys => ["training", .. factory.Kwargs];

    /// <inheritdoc />
    public override Layer<T> Build<T>(CaseConfig config) => ModelZoo.Create<T>(config).Root;

    /// <summary>
    /// Two small cases (eval and training) for models whose constructor can shrink them (timm's ResNets:
    /// <c>layers</c> and <c>channels</c>; the mobile networks: <c>width_mult</c> and <c>depth_mult</c>); none for the
    /// fixed-size ones (legacy_seresnet50, gct_resnet50, efficientnet_b0), whose float64 state_dicts are tens to
    /// hundreds of MB.
    /// </summary>
    public override IEnumerable<GeneratedCase> Generate(int seed)
    {
        var shrink = new List<(string, object)> { ("num_classes", 5) };
        if (factory.Kwargs.Contains("channels"))
        {
            int[] channels = factory.Name.Contains("resnext", StringComparison.Ordinal) ? [16, 16, 16, 16] : [4, 8, 8, 16];
            shrink.AddRange([("layers", new[] { 1, 1, 1, 1 }), ("channels", channels)]);
        }
        else if (factory.Kwargs.Contains("width_mult"))
        {
            shrink.Add(("width_mult", 0.25));
            if (factory.Kwargs.Contains("depth_mult")) shrink.Add(("depth_mult", 0.25));
        }
        else yield break;
        foreach (bool training in new[] { false, true })
        {
            var config = CaseConfig.Create(factory.Name, [("training", training), .. shrink]);
            var net = ModelZoo.Create<double>(config);
            int caseSeed = seed * 1000 + factory.Name.Length * 2 + (training ? 1 : 0);
            yield return new GeneratedCase($"{factory.Name}_{(training ? "train" : "eval")}", config,
                RandomWeights.Inputs(2, 32, 5, caseSeed), RandomWeights.StateDict(net, caseSeed));
        }
    }
}
