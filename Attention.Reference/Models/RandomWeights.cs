namespace Attention.Reference.Models;

/// <summary>
/// Random state_dicts for generated cases, benchmarks and tests, drawn as the PyTorch network pack draws them:
/// conv/linear weights U(±1/√fan_in), their biases N(0, 0.05), BatchNorm γ U(0.5, 1.5), β N(0, 0.1), running mean
/// N(0, 0.05), running var U(0.5, 1.5), GCT α U(0.5, 1.5), γ N(0, 0.5), β N(0, 0.3). Deterministic for a seed.
/// </summary>
public static class RandomWeights
{
    /// <summary>A random state_dict for <paramref name="net"/>, in state_dict order.</summary>
    public static TensorSet<double> StateDict(Network<double> net, int seed)
    {
        ArgumentNullException.ThrowIfNull(net);
        var rng = new Random(seed);
        double Normal(double sd) => sd * Gaussian(rng);
        double Uniform(double lo, double hi) => lo + (hi - lo) * rng.NextDouble();
        var set = new TensorSet<double>($"random {net.Name} state_dict");
        foreach (var (path, module) in net.Root.NamedModules())
        {
            bool bn = module.Kind == "BatchNorm2d";
            foreach (var p in module.Tensors)
            {
                var t = p.Value.ZerosLike();
                int fanIn = t.Rank >= 2 ? t.Length / t.Dim(0) : 1;
                for (int i = 0; i < t.Length; i++)
                    t.Data[i] = (p.Name, bn) switch
                    {
                        ("weight", true) => Uniform(0.5, 1.5),
                        ("bias", true) => Normal(0.1),
                        ("running_mean", _) => Normal(0.05),
                        ("running_var", _) => Uniform(0.5, 1.5),
                        ("weight", false) => Uniform(-1, 1) / Math.Sqrt(fanIn),
                        ("bias", false) => Normal(0.05),
                        ("alpha", _) => Uniform(0.5, 1.5),
                        ("gamma", _) => Normal(0.5),
                        ("beta", _) => Normal(0.3),
                        _ => Normal(0.1),
                    };
                set.Set(path.Length == 0 ? p.Name : path + "." + p.Name, t);
            }
        }
        return set;
    }

    /// <summary>Standard-normal x [n, 3, size, size] and y.grad [n, classes].</summary>
    public static TensorSet<double> Inputs(int n, int size, int classes, int seed)
    {
        var rng = new Random(seed);
        double Normal() => Gaussian(rng);
        var inputs = new TensorSet<double>("inputs");
        var x = new DenseTensor<double>(n, 3, size, size);
        for (int i = 0; i < x.Length; i++) x.Data[i] = Normal();
        var dy = new DenseTensor<double>(n, classes);
        for (int i = 0; i < dy.Length; i++) dy.Data[i] = Normal();
        inputs.Set("x", x);
        inputs.Set("y.grad", dy);
        return inputs;
    }

    /// <summary>A standard normal draw (Box–Muller), deterministic for the generator's seed.</summary>
    public static double Gaussian(Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        return Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
    }

    /// <summary>A tensor of draws offset + scale · N(0, 1) (Box–Muller, as <see cref="Gaussian"/>).</summary>
    public static DenseTensor<double> Normal(Random rng, double scale, double offset, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(rng);
        var t = new DenseTensor<double>(shape);
        for (int i = 0; i < t.Length; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            t.Data[i] = offset + scale * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        }
        return t;
    }

    /// <summary>A tensor of draws scale · U(lo, hi).</summary>
    public static DenseTensor<double> Uniform(Random rng, double lo, double hi, int[] shape, double scale = 1)
    {
        ArgumentNullException.ThrowIfNull(rng);
        var t = new DenseTensor<double>(shape);
        for (int i = 0; i < t.Length; i++) t.Data[i] = scale * (lo + (hi - lo) * rng.NextDouble());
        return t;
    }
}
