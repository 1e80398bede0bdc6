using System.Diagnostics;
using System.Numerics;
using Attention.Reference.Layers;
using Attention.Reference.Models;
using Attention.Reference.Tensors;

namespace Attention.Reference.Cases;

/// <summary>
/// A network case: <c>case.json</c> is <c>{"module": NAME, "training": BOOL, ...kwargs}</c> with NAME a model of
/// <see cref="ModelZoo"/> and the kwargs its constructor's; <c>params</c> holds the full state_dict; inputs hold
/// <c>x</c> [N, 3, H, W] and optionally <c>y.grad</c> [N, classes]. One runner serves every model: build the tree
/// from the factory, bind the state_dict by name, run, and name the outputs from the tree.
/// </summary>
public sealed class NetworkCaseModule(ModelFactory factory) : CaseModule
{
    /// <inheritdoc />
    public override string Name => factory.Name;

    /// <inheritdoc />
    public override IReadOnlyList<string> ConfigKeys => ["training", .. factory.Kwargs];

    /// <inheritdoc />
    public override TensorSet<T> Run<T>(CaseConfig config, TensorSet<T> inputs, TensorSet<T> parameters, RunOptions options)
    {
        var net = ModelZoo.Create<T>(config);
        bool training = config.GetBool("training", false);
        CheckInputNames(inputs);
        var x = inputs.Get("x");
        ShapeUtil.RequireRank(x, "x", 4, "N, 3, H, W");
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
                options.Progress($"{factory.Name}: forward, {modules} module outputs, at {name} ({clock.Elapsed.TotalSeconds:0.0} s)");
            }
        }
        var result = net.Run(x, dy, training, kernels, dump: false, OnOutput);
        if (options.Progress is not null && clock.ElapsedMilliseconds > 1500)
            options.Progress($"{factory.Name}: done in {clock.Elapsed.TotalSeconds:0.0} s");
        return result.Tensors;
    }

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
