using Attention.Reference.Ops;
using Attention.Reference.Tensors;
using BenchmarkDotNet.Attributes;
using Attention.Reference.Kernels.Conv;

namespace Attention.Benchmarks;

/// <summary>
/// The fast conv2d on the six ResNet-50 layers of <c>attention-ref bench conv</c>, batch 1, float32 and float64,
/// forward and backward (input + weight gradient) into preallocated outputs (no allocation once warm, apart from
/// the parallel loop's own bookkeeping).
/// </summary>
[MemoryDiagnoser]
public class ConvBenchmarks
{
    private object? _state;

    /// <summary>The layer, named as in the issue.</summary>
    [Params("stem7x7s2_3_64_224", "3x3_64_64_56", "1x1_256_64_56", "3x3_128_128_28", "3x3_256_256_14", "3x3_512_512_7")]
    public string Layer { get; set; } = "3x3_64_64_56";

    /// <summary>"float32" or "float64".</summary>
    [Params("float32", "float64")]
    public string DType { get; set; } = "float32";

    /// <summary>Threads for the parallel loops.</summary>
    [Params(2)]
    public int Threads { get; set; } = 2;

    private sealed class State<T>(Conv2dGeometry g, int size) where T : System.Numerics.IFloatingPointIeee754<T>
    {
        public readonly Conv2dGeometry G = g;
        public readonly DenseTensor<T> X = Random(1, g.InChannels, size, size);
        public readonly DenseTensor<T> W = Random(g.WeightShape);
        public readonly DenseTensor<T> B = Random(g.OutChannels);
        public readonly DenseTensor<T> Y = new(1, g.OutChannels, g.OutputSize(size, size).H, g.OutputSize(size, size).W);
        public readonly DenseTensor<T> Dy = Random(1, g.OutChannels, g.OutputSize(size, size).H, g.OutputSize(size, size).W);
        public readonly DenseTensor<T> Dx = new(1, g.InChannels, size, size);
        public readonly DenseTensor<T> Dw = new(g.WeightShape);

        private static DenseTensor<T> Random(params int[] shape)
        {
            var rng = new Random(shape.Sum());
            var t = new DenseTensor<T>(shape);
            for (int i = 0; i < t.Length; i++) t.Data[i] = T.CreateChecked(rng.NextDouble() - 0.5);
            return t;
        }

        public void Forward() => Conv2d.Forward(X, W, B, G, Y);

        public void Backward()
        {
            Conv2d.BackwardInput(Dy, W, G, Dx);
            Conv2d.BackwardWeight(X, Dy, G, Dw);
        }
    }

    /// <summary>Builds the tensors and warms the workspaces.</summary>
    [GlobalSetup]
    public void Setup()
    {
        Compute.MaxThreads = Threads;
        var (g, size) = Layer switch
        {
            "stem7x7s2_3_64_224" => (Conv2dGeometry.Square(3, 64, 7, stride: 2, padding: 3), 224),
            "3x3_64_64_56" => (Conv2dGeometry.Square(64, 64, 3, padding: 1), 56),
            "1x1_256_64_56" => (Conv2dGeometry.Square(256, 64, 1), 56),
            "3x3_128_128_28" => (Conv2dGeometry.Square(128, 128, 3, padding: 1), 28),
            "3x3_256_256_14" => (Conv2dGeometry.Square(256, 256, 3, padding: 1), 14),
            "3x3_512_512_7" => (Conv2dGeometry.Square(512, 512, 3, padding: 1), 7),
            _ => throw new ArgumentException($"unknown layer '{Layer}'"),
        };
        _state = DType == "float32" ? new State<float>(g, size) : new State<double>(g, size);
        Forward();
        Backward();
    }

    /// <summary>y = conv(x, w) + b.</summary>
    [Benchmark]
    public void Forward()
    {
        if (_state is State<float> f) f.Forward();
        else ((State<double>)_state!).Forward();
    }

    /// <summary>x.grad and weight.grad.</summary>
    [Benchmark]
    public void Backward()
    {
        if (_state is State<float> f) f.Backward();
        else ((State<double>)_state!).Backward();
    }
}
