using Attention.Reference.Onnx;

namespace Attention.Reference.Tests.Onnx;

/// <summary>
/// ONNX's own backend node tests (onnx 1.12, Debian's libonnx-testdata, MIT/Expat: testdata/onnx/node/ONNX-COPYRIGHT)
/// for every supported operator, through the evaluator in float64. The expected outputs are numpy's, mostly computed
/// in float32: each carries its own float32 rounding, so a floating output may differ from the exact float64 value by
/// a few float32 units of its largest magnitude — 2^-20 (8 units at 2^-23) of max |expected| is allowed; float64
/// expected outputs get 1e-12 of their largest magnitude; integer and bool outputs must be equal.
/// </summary>
public sealed class OnnxNodeTests
{
    private static string Root => Path.Combine(AppContext.BaseDirectory, "testdata", "onnx");

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var d in Directory.GetDirectories(Path.Combine(Root, "node")).Order(StringComparer.Ordinal)) data.Add(Path.GetFileName(d));
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void NodeTestPasses(string name)
    {
        string dir = Path.Combine(Root, "node", name);
        var model = OnnxModel.Load(Path.Combine(dir, "model.onnx"));
        var set = Path.Combine(dir, "test_data_set_0");
        var inputs = Directory.GetFiles(set, "input_*.pb").Order(StringComparer.Ordinal).ToList();
        var result = OnnxRunner.Run(model, OnnxRunner.ReadInputs<double>(model, inputs), dump: false);
        var outputs = Directory.GetFiles(set, "output_*.pb").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(model.Outputs.Count, outputs.Count);
        for (int k = 0; k < outputs.Count; k++)
        {
            var proto = OnnxTensors.ReadProtoFile(outputs[k]);
            var expected = OnnxTensors.ToValue<double>(proto, outputs[k]);
            var got = result.Outputs.Get(model.Outputs[k].Name);
            Assert.Equal(expected.Shape, got.ShapeArray());
            var e = expected.ToDoubles();
            double max = e.Length == 0 ? 0 : e.Max(Math.Abs);
            double tol = expected.ElementType switch
            {
                OnnxElementType.Double => 1e-12 * max,
                OnnxElementType.Float or OnnxElementType.Float16 or OnnxElementType.BFloat16 => Math.Pow(2, -20) * max,
                _ => 0,
            };
            for (int i = 0; i < e.Length; i++)
            {
                double g = got.Data[i];
                bool ok = double.IsNaN(e[i]) ? double.IsNaN(g) : Math.Abs(g - e[i]) <= tol || g == e[i];
                Assert.True(ok, $"{name}: output '{model.Outputs[k].Name}'[{i}] = {g:R}, expected {e[i]:R} (tolerance {tol:E2})");
            }
        }
    }

    [Theory]
    [InlineData("test_maxpool_3d_default", "only 2-D pooling is supported")]
    [InlineData("test_averagepool_1d_default", "only 2-D pooling is supported")]
    [InlineData("test_training_dropout", "training_mode = true is not supported")]
    [InlineData("test_batchnorm_example_training_mode", "training_mode = 1 is not supported")]
    [InlineData("test_cast_FLOAT_to_STRING", "cast to String is not supported")]
    [InlineData("test_maxpool_with_argmax_2d_precomputed_pads", "the Indices output is not supported")]
    public void UnsupportedFormsAreRefusedByName(string name, string reason)
    {
        string dir = Path.Combine(Root, "node-unsupported", name);
        var e = Assert.Throws<OnnxException>(() =>
        {
            var model = OnnxModel.Load(Path.Combine(dir, "model.onnx"));
            var inputs = Directory.GetFiles(Path.Combine(dir, "test_data_set_0"), "input_*.pb").Order(StringComparer.Ordinal).ToList();
            OnnxRunner.Run(model, OnnxRunner.ReadInputs<double>(model, inputs), dump: false);
        });
        Assert.Contains("model.onnx: node 0", e.Message);
        Assert.Contains(reason, e.Message);
    }
}
