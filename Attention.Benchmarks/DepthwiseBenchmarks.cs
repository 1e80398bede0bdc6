using Attention.Reference.Ops;
using Attention.Reference.Kernels.Conv;
using Attention.Reference.Tensors;
using BenchmarkDotNet.Attributes;

namespace Attention.Benchmarks;

/// <summary>
/// MobileNet's depthwise layers (3x3, stride 1 on [1, 144, 56, 56] and stride 2 on [1, 96, 112, 112]) through the
/// depthwise kernel and, for comparison, through the dense kernel (<c>Conv2dTuning.Depthwise = false</c>); both give
/// the same bits.
/// </summary>
[MemoryDiagnoser]
public class DepthwiseBenchmarks
{
    private (Conv2dGeometry G, DenseTensor<float> X, DenseTensor<float> W, DenseTensor<float> B, DenseTensor<float> Y,
        DenseTensor<float> Dy, DenseTensor<float> Dx, DenseTensor<float> Dw) _s;

    /// <summary>The layer.</summary>
    [Params("dw3x3_144_56", "dw3x3s2_96_112")]
    public string Layer { get; set; } = "dw3x3_144_56";

    /// <summary>"depthwise" or "dense".</summary>
    [Params("depthwise", "dense")]
    public string Kernel { get; set; } = "depthwise";

    /// <summary>Builds the float32 tensors and warms the workspaces.</summary>
    [GlobalSetup]
    public void Setup()
    {
        Compute.MaxThreads = 2;
        var (c, stride, size) = Layer == "dw3x3_144_56" ? (144, 1, 56) : (96, 2, 112);
        var g = Conv2dGeometry.Square(c, c, 3, stride: stride, padding: 1, groups: c);
        var (ho, wo) = g.OutputSize(size, size);
        var rng = new Random(1);
        DenseTensor<float> R(params int[] shape)
        {
            var t = new DenseTensor<float>(shape);
            for (int i = 0; i < t.Length; i++) t.Data[i] = (float)(rng.NextDouble() - 0.5);
            return t;
        }
        _s = (g, R(1, c, size, size), R(g.WeightShape), R(c), new DenseTensor<float>(1, c, ho, wo), R(1, c, ho, wo),
            new DenseTensor<float>(1, c, size, size), new DenseTensor<float>(g.WeightShape));
        Forward();
        Backward();
    }

    /// <summary>y = conv(x, w) + b.</summary>
    [Benchmark]
    public void Forward()
    {
        Conv2dTuning.Depthwise = Kernel == "depthwise";
        Conv2d.Forward(_s.X, _s.W, _s.B, _s.G, _s.Y);
    }

    /// <summary>x.grad and weight.grad.</summary>
    [Benchmark]
    public void Backward()
    {
        Conv2dTuning.Depthwise = Kernel == "depthwise";
        Conv2d.BackwardInput(_s.Dy, _s.W, _s.G, _s.Dx);
        Conv2d.BackwardWeight(_s.X, _s.Dy, _s.G, _s.Dw);
    }
}
