using Attention.Reference.Onnx;
using Attention.Reference.Tensors;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using Ort = Microsoft.ML.OnnxRuntime.Tensors;

namespace Attention.Cli.Onnx;

/// <summary>
/// ONNX Runtime (CPU execution provider) on a model, float32: float64 models are narrowed first (ORT's CPU provider
/// has no float64 Conv, GlobalAveragePool, HardSigmoid or HardSwish), and every node output is made a graph output so
/// that each can be compared.
/// </summary>
public static class OrtRunner
{
    /// <summary>Parses a --ort-optimization value.</summary>
    public static GraphOptimizationLevel Level(string name) => name switch
    {
        "disable" => GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic" => GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended" => GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all" => GraphOptimizationLevel.ORT_ENABLE_ALL,
        _ => throw new ArgumentException($"--ort-optimization must be disable, basic, extended or all, got '{name}'."),
    };

    /// <summary>ONNX Runtime's version string.</summary>
    public static string Version => OrtEnv.Instance().GetVersionString();

    /// <summary>Runs the model; returns every output ORT produced, by name, widened to double.</summary>
    public static Dictionary<string, DenseTensor<double>> Run(ModelProto model, IReadOnlyDictionary<string, OnnxValue<double>> inputs,
        GraphOptimizationLevel level, int threads)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputs);
        var prepared = OnnxRewrite.ExposeAllOutputs(OnnxRewrite.ToFloat32(model));
        SessionOptions options;
        try
        {
            options = new SessionOptions { GraphOptimizationLevel = level, IntraOpNumThreads = threads, InterOpNumThreads = 1 };
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException or BadImageFormatException)
        {
            throw new NotSupportedException(
                $"ONNX Runtime's native library could not be loaded on this machine ({e.GetBaseException().Message}); " +
                "compare another backend's dump with --actual instead.", e);
        }
        using var _ = options;
        InferenceSession session;
        try
        {
            session = new InferenceSession(prepared.ToByteArray(), options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new NotSupportedException($"ONNX Runtime refused the model: {e.Message}", e);
        }
        using var __ = session;
        var feeds = new List<NamedOnnxValue>();
        foreach (var (name, meta) in session.InputMetadata)
        {
            if (!inputs.TryGetValue(name, out var v)) throw new ArgumentException($"ONNX Runtime wants input '{name}', which was not given.");
            var dims = v.Shape;
            if (meta.ElementDataType == Ort.TensorElementType.Float)
                feeds.Add(NamedOnnxValue.CreateFromTensor(name, new Ort.DenseTensor<float>(v.ToDoubles().Select(d => (float)d).ToArray(), dims)));
            else if (meta.ElementDataType == Ort.TensorElementType.Int64)
                feeds.Add(NamedOnnxValue.CreateFromTensor(name, new Ort.DenseTensor<long>(v.ToDoubles().Select(d => (long)d).ToArray(), dims)));
            else if (meta.ElementDataType == Ort.TensorElementType.Bool)
                feeds.Add(NamedOnnxValue.CreateFromTensor(name, new Ort.DenseTensor<bool>(v.ToDoubles().Select(d => d != 0).ToArray(), dims)));
            else throw new ArgumentException($"input '{name}': ONNX Runtime wants {meta.ElementDataType}, which compare does not feed.");
        }
        var result = new Dictionary<string, DenseTensor<double>>(StringComparer.Ordinal);
        using var outputs = session.Run(feeds);
        foreach (var o in outputs)
        {
            if (o.Value is not Ort.Tensor<float> and not Ort.Tensor<double> and not Ort.Tensor<long> and not Ort.Tensor<int> and not Ort.Tensor<bool>)
                continue;
            double[] values = o.Value switch
            {
                Ort.Tensor<float> f => f.ToArray().Select(v => (double)v).ToArray(),
                Ort.Tensor<double> d => d.ToArray(),
                Ort.Tensor<long> l => l.ToArray().Select(v => (double)v).ToArray(),
                Ort.Tensor<int> i => i.ToArray().Select(v => (double)v).ToArray(),
                Ort.Tensor<bool> b => b.ToArray().Select(v => v ? 1.0 : 0.0).ToArray(),
                _ => [],
            };
            int[] shape = o.Value switch
            {
                Ort.Tensor<float> f => f.Dimensions.ToArray(),
                Ort.Tensor<double> d => d.Dimensions.ToArray(),
                Ort.Tensor<long> l => l.Dimensions.ToArray(),
                Ort.Tensor<int> i => i.Dimensions.ToArray(),
                Ort.Tensor<bool> b => b.Dimensions.ToArray(),
                _ => [],
            };
            result[o.Name] = new DenseTensor<double>(values, shape);
        }
        return result;
    }
}
