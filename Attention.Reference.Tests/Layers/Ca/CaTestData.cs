using Attention.Reference.Layers;
using Attention.Reference.Models;

namespace Attention.Reference.Tests.Layers.Ca;

/// <summary>coordatt.py's CoordAtt parameters as the tests write them (weights as [out, in]).</summary>
internal sealed class CoordinateAttentionParameters<T> where T : System.Numerics.IFloatingPointIeee754<T>
{
    public required DenseTensor<T> Conv1Weight { get; init; }
    public required DenseTensor<T> Conv1Bias { get; init; }
    public required DenseTensor<T> BnWeight { get; init; }
    public required DenseTensor<T> BnBias { get; init; }
    public required DenseTensor<T> BnRunningMean { get; init; }
    public required DenseTensor<T> BnRunningVar { get; init; }
    public required DenseTensor<T> ConvHWeight { get; init; }
    public required DenseTensor<T> ConvHBias { get; init; }
    public required DenseTensor<T> ConvWWeight { get; init; }
    public required DenseTensor<T> ConvWBias { get; init; }

    public int Channels => Conv1Weight.Dim(1);
    public int Mip => Conv1Weight.Dim(0);

    public CoordinateAttentionParameters<TOut> Cast<TOut>() where TOut : System.Numerics.IFloatingPointIeee754<TOut> => new()
    {
        Conv1Weight = Conv1Weight.Cast<TOut>(), Conv1Bias = Conv1Bias.Cast<TOut>(), BnWeight = BnWeight.Cast<TOut>(),
        BnBias = BnBias.Cast<TOut>(), BnRunningMean = BnRunningMean.Cast<TOut>(), BnRunningVar = BnRunningVar.Cast<TOut>(),
        ConvHWeight = ConvHWeight.Cast<TOut>(), ConvHBias = ConvHBias.Cast<TOut>(), ConvWWeight = ConvWWeight.Cast<TOut>(),
        ConvWBias = ConvWBias.Cast<TOut>(),
    };

    /// <summary>The state_dict of coordatt.py's module (copies: a training forward replaces the running statistics).</summary>
    public TensorSet<T> StateDict()
    {
        var s = new TensorSet<T>("params");
        s.Set("conv1.weight", Conv1Weight.Clone());
        s.Set("conv1.bias", Conv1Bias.Clone());
        s.Set("bn1.weight", BnWeight.Clone());
        s.Set("bn1.bias", BnBias.Clone());
        s.Set("bn1.running_mean", BnRunningMean.Clone());
        s.Set("bn1.running_var", BnRunningVar.Clone());
        s.Set("conv_h.weight", ConvHWeight.Clone());
        s.Set("conv_h.bias", ConvHBias.Clone());
        s.Set("conv_w.weight", ConvWWeight.Clone());
        s.Set("conv_w.bias", ConvWBias.Clone());
        return s;
    }
}

/// <summary>One forward of the CA layer: y, the updated running statistics, and the pass its backward continues.</summary>
internal sealed class CaForward<T> where T : System.Numerics.IFloatingPointIeee754<T>
{
    public required DenseTensor<T> Y { get; init; }
    public required DenseTensor<T> RunningMean { get; init; }
    public required DenseTensor<T> RunningVar { get; init; }
    internal required Network<T> Net { get; init; }
    internal required Pass<T> Pass { get; init; }
}

/// <summary>x.grad and the parameter gradients (weights as [out, in]).</summary>
internal sealed class CaGradients<T> where T : System.Numerics.IFloatingPointIeee754<T>
{
    public required DenseTensor<T> X { get; init; }
    public required DenseTensor<T> Conv1Weight { get; init; }
    public required DenseTensor<T> Conv1Bias { get; init; }
    public required DenseTensor<T> BnWeight { get; init; }
    public required DenseTensor<T> BnBias { get; init; }
    public required DenseTensor<T> ConvHWeight { get; init; }
    public required DenseTensor<T> ConvHBias { get; init; }
    public required DenseTensor<T> ConvWWeight { get; init; }
    public required DenseTensor<T> ConvWBias { get; init; }
}

/// <summary>Runs the one CA layer (<see cref="CoordAtt{T}.CoordAttPy"/>) as the tests call it.</summary>
internal static class CaRun
{
    public static CaForward<T> Forward<T>(DenseTensor<T> x, CoordinateAttentionParameters<T> p, bool training, double eps = 1e-5,
        KernelPath kernels = KernelPath.Oracle) where T : System.Numerics.IFloatingPointIeee754<T>
    {
        var net = new Network<T>("ca", CoordAtt<T>.CoordAttPy(p.Channels, p.Mip, eps));
        net.LoadStateDict(p.StateDict());
        var pass = new Pass<T> { Training = training, Kernels = kernels };
        var y = net.Root.Forward(x, pass);
        var state = net.Root.NamedTensors().ToDictionary(t => t.Name, t => t.Tensor.Value);
        return new CaForward<T> { Y = y, RunningMean = state["bn1.running_mean"], RunningVar = state["bn1.running_var"], Net = net, Pass = pass };
    }

    public static CaGradients<T> Backward<T>(CaForward<T> f, DenseTensor<T> dy) where T : System.Numerics.IFloatingPointIeee754<T>
    {
        var root = f.Net.Root;
        root.ZeroGrad();
        var dx = root.Backward(dy, f.Pass);
        var g = root.NamedParameters().ToDictionary(t => t.Name, t => t.Tensor.Grad!);
        DenseTensor<T> M(string name) => g[name].Reshape(g[name].Dim(0), g[name].Dim(1));
        return new CaGradients<T>
        {
            X = dx, Conv1Weight = M("conv1.weight"), Conv1Bias = g["conv1.bias"], BnWeight = g["bn1.weight"], BnBias = g["bn1.bias"],
            ConvHWeight = M("conv_h.weight"), ConvHBias = g["conv_h.bias"], ConvWWeight = M("conv_w.weight"), ConvWBias = g["conv_w.bias"],
        };
    }
}
