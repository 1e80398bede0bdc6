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
    /// <c>layers</c> and <c>channels</c>); none for the fixed-size ones (legacy_seresnet50, gct_resnet50), whose
    /// float64 state_dicts alone are over 200 MB.
    /// </summary>
    public override IEnumerable<GeneratedCase> Generate(int seed)
    {
        if (!factory.Kwargs.Contains("channels")) yield break;
        int[] channels = factory.Name.Contains("resnext", StringComparison.Ordinal) ? [16, 16, 16, 16] : [4, 8, 8, 16];
        foreach (bool training in new[] { false, true })
        {
            var config = CaseConfig.Create(factory.Name, ("training", training), ("layers", new[] { 1, 1, 1, 1 }),
                ("channels", channels), ("num_classes", 5));
            var net = ModelZoo.Create<double>(config);
            int caseSeed = seed * 1000 + factory.Name.Length * 2 + (training ? 1 : 0);
            yield return new GeneratedCase($"{factory.Name}_{(training ? "train" : "eval")}", config,
                RandomWeights.Inputs(2, 32, 5, caseSeed), RandomWeights.StateDict(net, caseSeed));
        }
    }
}
