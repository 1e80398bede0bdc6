using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Attention.Reference.Ops;
using Attention.Reference.Tensors;
using Attention.Reference.Kernels.Conv;

namespace Attention.Cli.Bench;

/// <summary>
/// <c>attention-ref bench conv</c>: the fast conv2d on the ResNet-50 layers at batch 1, forward and backward
/// (backward = input gradient + weight gradient), GFLOP/s = 2·O·Ho·Wo·(I/G)·kh·kw per image for the forward and
/// for each half of the backward. The first rows, <c>fma_peak</c>, time a register-only FMA loop on the same
/// threads (Vector512; in software where not accelerated), to put the others in scale on a busy machine.
/// </summary>
public sealed class ConvBench : IBenchSuite
{
    /// <summary>A benchmark layer: name, geometry, input size.</summary>
    public sealed record Layer(string Name, Conv2dGeometry Geometry, int Size)
    {
        /// <summary>Floating-point operations of one forward pass at batch 1.</summary>
        public double Flops => 2.0 * Geometry.MacsPerImage(Size, Size);
    }

    /// <summary>The six ResNet-50 layers of the issue (padding k/2).</summary>
    public static IReadOnlyList<Layer> Layers { get; } =
    [
        new("stem7x7s2_3_64_224", Conv2dGeometry.Square(3, 64, 7, stride: 2, padding: 3), 224),
        new("3x3_64_64_56", Conv2dGeometry.Square(64, 64, 3, padding: 1), 56),
        new("1x1_256_64_56", Conv2dGeometry.Square(256, 64, 1), 56),
        new("3x3_128_128_28", Conv2dGeometry.Square(128, 128, 3, padding: 1), 28),
        new("3x3_256_256_14", Conv2dGeometry.Square(256, 256, 3, padding: 1), 14),
        new("3x3_512_512_7", Conv2dGeometry.Square(512, 512, 3, padding: 1), 7),
        // MobileNet depthwise layers (memory-bound: compare their GB/s, in the JSON, with the machine's bandwidth).
        new("dw3x3_144_56", Conv2dGeometry.Square(144, 144, 3, padding: 1, groups: 144), 56),
        new("dw3x3s2_96_112", Conv2dGeometry.Square(96, 96, 3, stride: 2, padding: 1, groups: 96), 112),
    ];

    /// <inheritdoc />
    public string Name => "conv";

    /// <inheritdoc />
    public string Description => "fast conv2d on six ResNet-50 layers, batch 1, forward and backward, GFLOP/s";

    /// <inheritdoc />
    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        int saved = Compute.MaxThreads;
        Compute.MaxThreads = settings.Threads;
        try
        {
            // The machine's fused-multiply-add peak right now (16 independent chains per thread), for scale.
            foreach (var dtype in settings.DTypes)
                yield return dtype == "float32" ? Peak<float>(settings) : Peak<double>(settings);
            // The machine's memory bandwidth right now, for the memory-bound (depthwise) rows' GB/s.
            yield return Bandwidth(settings);
            foreach (var layer in Layers)
            foreach (var dtype in settings.DTypes)
            {
                var rows = dtype == "float32" ? Measure<float>(layer, settings) : Measure<double>(layer, settings);
                foreach (var row in rows) yield return row;
            }
        }
        finally
        {
            Compute.MaxThreads = saved;
        }
    }

    private static BenchResult Peak<T>(BenchSettings s) where T : unmanaged, IFloatingPointIeee754<T>
    {
        const int Iterations = 2_000_000;
        int threads = s.Threads;
        // The widest accelerated registers: a Vector512 loop where AVX-512 is missing runs in software (an AVX2 machine
        // reported 50 GFLOP/s), so there 12 Vector256 chains (16 registers), and 16 Vector128 chains where only 128-bit
        // registers are accelerated (ARM64 NEON, 32 registers).
        int width = Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : Vector128.IsHardwareAccelerated ? 128 : 512;
        double ms = BenchTimer.MedianMs(() => Compute.For(threads, _ =>
        {
            if (width == 256) PeakLoop256<T>(Iterations);
            else if (width == 128) PeakLoop128<T>(Iterations);
            else PeakLoop<T>(Iterations);
        }), s.MinSeconds);
        double lanes = width switch { 256 => 12 * Vector256<T>.Count, 128 => 16 * Vector128<T>.Count, _ => 16 * Vector512<T>.Count };
        double flops = 2.0 * lanes * Iterations * threads;
        return new BenchResult("fma_peak", typeof(T) == typeof(float) ? "float32" : "float64", "peak", ms, flops / (ms * 1e6), threads);
    }

    /// <summary>
    /// A parallel copy of 256 MB into another 256 MB (far beyond any cache), in 1 MB chunks: GB/s counts the bytes
    /// read and written.
    /// </summary>
    private static BenchResult Bandwidth(BenchSettings s)
    {
        const int Bytes = 256 << 20, Chunk = 1 << 20;
        var src = new byte[Bytes];
        var dst = new byte[Bytes];
        new Random(1).NextBytes(src.AsSpan(0, Chunk));
        for (int i = 1; i < Bytes / Chunk; i++) src.AsSpan(0, Chunk).CopyTo(src.AsSpan(i * Chunk, Chunk));
        double ms = BenchTimer.MedianMs(() => Compute.For(Bytes / Chunk, i => src.AsSpan(i * Chunk, Chunk).CopyTo(dst.AsSpan(i * Chunk, Chunk))),
            s.MinSeconds);
        return new BenchResult("memory_copy_256MB", "bytes", "copy", ms, null, s.Threads, 2.0 * Bytes / (ms * 1e6));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static T PeakLoop<T>(int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var a = Vector512.Create(T.CreateChecked(1.0000001));
        var b = Vector512.Create(T.CreateChecked(0.9999999));
        Vector512<T> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        Vector512<T> c8 = default, c9 = default, c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        for (int i = 0; i < n; i++)
        {
            c0 = Fma(a, b, c0); c1 = Fma(a, b, c1); c2 = Fma(a, b, c2); c3 = Fma(a, b, c3);
            c4 = Fma(a, b, c4); c5 = Fma(a, b, c5); c6 = Fma(a, b, c6); c7 = Fma(a, b, c7);
            c8 = Fma(a, b, c8); c9 = Fma(a, b, c9); c10 = Fma(a, b, c10); c11 = Fma(a, b, c11);
            c12 = Fma(a, b, c12); c13 = Fma(a, b, c13); c14 = Fma(a, b, c14); c15 = Fma(a, b, c15);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11 + c12 + c13 + c14 + c15);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static T PeakLoop256<T>(int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var a = Vector256.Create(T.CreateChecked(1.0000001));
        var b = Vector256.Create(T.CreateChecked(0.9999999));
        Vector256<T> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector256<T> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (int i = 0; i < n; i++)
        {
            c0 = Fma(a, b, c0); c1 = Fma(a, b, c1); c2 = Fma(a, b, c2); c3 = Fma(a, b, c3);
            c4 = Fma(a, b, c4); c5 = Fma(a, b, c5); c6 = Fma(a, b, c6); c7 = Fma(a, b, c7);
            c8 = Fma(a, b, c8); c9 = Fma(a, b, c9); c10 = Fma(a, b, c10); c11 = Fma(a, b, c11);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static T PeakLoop128<T>(int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var a = Vector128.Create(T.CreateChecked(1.0000001));
        var b = Vector128.Create(T.CreateChecked(0.9999999));
        Vector128<T> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        Vector128<T> c8 = default, c9 = default, c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        for (int i = 0; i < n; i++)
        {
            c0 = Fma(a, b, c0); c1 = Fma(a, b, c1); c2 = Fma(a, b, c2); c3 = Fma(a, b, c3);
            c4 = Fma(a, b, c4); c5 = Fma(a, b, c5); c6 = Fma(a, b, c6); c7 = Fma(a, b, c7);
            c8 = Fma(a, b, c8); c9 = Fma(a, b, c9); c10 = Fma(a, b, c10); c11 = Fma(a, b, c11);
            c12 = Fma(a, b, c12); c13 = Fma(a, b, c13); c14 = Fma(a, b, c14); c15 = Fma(a, b, c15);
        }
        return Vector128.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11 + c12 + c13 + c14 + c15);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<T> Fma<T>(Vector128<T> x, Vector128<T> y, Vector128<T> acc) where T : unmanaged, IFloatingPointIeee754<T> =>
        typeof(T) == typeof(float)
            ? Vector128.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), acc.AsSingle()).As<float, T>()
            : Vector128.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), acc.AsDouble()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> Fma<T>(Vector256<T> x, Vector256<T> y, Vector256<T> acc) where T : unmanaged, IFloatingPointIeee754<T> =>
        typeof(T) == typeof(float)
            ? Vector256.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), acc.AsSingle()).As<float, T>()
            : Vector256.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), acc.AsDouble()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Fma<T>(Vector512<T> x, Vector512<T> y, Vector512<T> acc) where T : unmanaged, IFloatingPointIeee754<T> =>
        typeof(T) == typeof(float)
            ? Vector512.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), acc.AsSingle()).As<float, T>()
            : Vector512.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), acc.AsDouble()).As<double, T>();

    private static List<BenchResult> Measure<T>(Layer layer, BenchSettings s) where T : IFloatingPointIeee754<T>
    {
        var g = layer.Geometry;
        var (ho, wo) = g.OutputSize(layer.Size, layer.Size);
        var rng = new Random(1);
        DenseTensor<T> Rand(params int[] shape)
        {
            var t = new DenseTensor<T>(shape);
            for (int i = 0; i < t.Length; i++) t.Data[i] = T.CreateChecked(rng.NextDouble() - 0.5);
            return t;
        }
        var x = Rand(1, g.InChannels, layer.Size, layer.Size);
        var w = Rand(g.WeightShape);
        var b = Rand(g.OutChannels);
        var dy = Rand(1, g.OutChannels, ho, wo);
        var y = new DenseTensor<T>(1, g.OutChannels, ho, wo);
        var dx = x.ZerosLike();
        var dw = w.ZerosLike();
        string dtype = typeof(T) == typeof(float) ? "float32" : "float64";
        var (fwd, _, fwdMin) = BenchTimer.Time(() => Conv2d.Forward(x, w, b, g, y), s.MinSeconds);
        var (bwd, _, bwdMin) = BenchTimer.Time(() =>
        {
            Conv2d.BackwardInput(dy, w, g, dx);
            Conv2d.BackwardWeight(x, dy, g, dw);
        }, s.MinSeconds);
        // Compulsory traffic: forward reads x, w, b and writes y; backward reads dy, w (input gradient) and x, dy
        // (weight gradient) and writes dx and dw. Quoted for the depthwise rows, which are memory-bound.
        double size = typeof(T) == typeof(float) ? 4 : 8;
        bool depthwise = g.Groups > 1 && g.Groups == g.InChannels;
        double? fwdGb = depthwise ? (x.Length + w.Length + b.Length + y.Length) * size / (fwd * 1e6) : null;
        double? bwdGb = depthwise ? (2.0 * dy.Length + 2 * w.Length + 2 * x.Length) * size / (bwd * 1e6) : null;
        return
        [
            new(layer.Name, dtype, "forward", fwd, layer.Flops / (fwd * 1e6), s.Threads, fwdGb, fwdMin),
            new(layer.Name, dtype, "backward", bwd, 2 * layer.Flops / (bwd * 1e6), s.Threads, bwdGb, bwdMin),
        ];
    }
}
