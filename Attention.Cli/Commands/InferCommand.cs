using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Attention.Reference.Imaging;
using Attention.Reference.IO;
using Attention.Reference.Layers;
using Attention.Reference.Models;
using Attention.Reference.Tensors;

namespace Attention.Cli.Commands;

/// <summary>
/// <c>infer NAME --weights FILE IMAGE... [--top K] [--labels FILE] [--threads N] [--json] [--save-input FILE.npy]</c>:
/// images in, classes out, with the model's own preprocessing and a published state_dict.
/// </summary>
public static class InferCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliIO io)
    {
        var nameArg = new Argument<string>("model") { Description = "The model (resnet50, seresnet50, mobilenet_v3_large, efficientnet_b0, mbv2_ca, ...)." };
        var imagesArg = new Argument<string[]>("images") { Description = "PNG or JPEG files.", Arity = ArgumentArity.OneOrMore };
        var weightsOpt = new Option<string>("--weights") { Description = "The state_dict: .safetensors, or .pth as torch.save writes it.", Required = true };
        var topOpt = new Option<int>("--top") { Description = "How many classes to print per image.", DefaultValueFactory = _ => 5 };
        var labelsOpt = new Option<string?>("--labels") { Description = "Class names, one per line (default: the ImageNet-1k names for 1000 classes)." };
        var jsonOpt = new Option<bool>("--json") { Description = "One JSON object per image." };
        var saveOpt = new Option<string?>("--save-input") { Description = "Write the exact input tensor [N, 3, S, S] (float32 .npy) for another backend." };
        var dtypeOpt = new Option<string>("--dtype") { Description = "float32 (fast kernels, default) or float64 (the oracle).", DefaultValueFactory = _ => "float32" };
        dtypeOpt.AcceptOnlyFromAmong("float32", "float64");
        var sizeOpt = new Option<int?>("--size") { Description = "Override the recipe's input size." };
        var cropOpt = new Option<double?>("--crop-pct") { Description = "Override the recipe's crop_pct." };
        var interpOpt = new Option<string?>("--interpolation") { Description = "Override the recipe's filter: bilinear or bicubic." };
        interpOpt.AcceptOnlyFromAmong("bilinear", "bicubic");
        var threadsOpt = ThreadsOption.Create();
        var directOpt = new Option<bool>("--no-winograd")
        {
            Description = "float32: run 3x3 stride-1 convolutions with the direct kernel instead of Winograd F(2x2,3x3) (other roundings; see docs/inference.md).",
        };
        var memoryOpt = MemoryOption.Create();
        var cmd = new Command("infer", "Classify images with a model and its published weights (the model's own preprocessing; top-k with probabilities).")
        {
            nameArg, imagesArg, weightsOpt, topOpt, labelsOpt, jsonOpt, saveOpt, dtypeOpt, sizeOpt, cropOpt, interpOpt, threadsOpt, directOpt,
            memoryOpt,
        };
        cmd.SetAction(p => io.Guard(() =>
        {
            string model = p.GetValue(nameArg)!;
            var images = p.GetValue(imagesArg)!;
            int top = p.GetValue(topOpt);
            if (top < 1) throw new ArgumentException($"--top must be at least 1, got {top}.");
            var recipe = ModelZoo.GetNetwork(model).Recipe!;
            recipe = recipe with
            {
                Size = p.GetValue(sizeOpt) ?? recipe.Size,
                CropPct = p.GetValue(cropOpt) ?? recipe.CropPct,
                Filter = p.GetValue(interpOpt) switch { "bicubic" => Interpolation.Bicubic, "bilinear" => Interpolation.Bilinear, _ => recipe.Filter },
            };
            if (recipe.Size < 1) throw new ArgumentException($"--size must be at least 1, got {recipe.Size}.");
            // Sizes first: every module output of the forward for this batch and size, planned (checked 64-bit) before
            // an image is decoded or a weight read, against --max-memory as `run` does.
            long cap = MemoryOption.Parse(p.GetValue(memoryOpt)) ?? RunOptions.DefaultMaxMemory;
            long elementSize = p.GetValue(dtypeOpt) == "float64" ? 8 : 4;
            var plan = new ShapePlan();
            long planned;
            try
            {
                ModelZoo.Create<float>(model).Root.InferShape([images.Length, 3, recipe.Size, recipe.Size], plan);
                planned = checked(plan.Elements * elementSize + 2L * images.Length * 3 * recipe.Size * recipe.Size * elementSize);
            }
            catch (OverflowException)
            {
                throw new ArgumentException($"--size {recipe.Size}: the module outputs of {model} do not fit in 64-bit sizes.");
            }
            if (planned > cap)
                throw new ArgumentException(
                    $"--size {recipe.Size}: {model} on {images.Length} image(s) of {recipe.Size}x{recipe.Size} plans " +
                    $"{RunOptions.Bytes(planned)} for its module outputs, over the " +
                    $"{RunOptions.Bytes(cap)} limit (--max-memory).");
            string? save = p.GetValue(saveOpt);
            if (save is not null) OutputFile.Check(save, images.Append(p.GetValue(weightsOpt)!));
            // Decode and preprocess everything first: a bad image fails before the network is built.
            var clock = Stopwatch.StartNew();
            var inputs = images.Select(f => Preprocess(recipe, f)).ToList();
            var batch = Stack(inputs);
            double prepMs = clock.Elapsed.TotalMilliseconds;
            string[]? labels = ReadLabels(p.GetValue(labelsOpt));
            float[][] probs = ThreadsOption.Apply(p.GetValue(threadsOpt), () => p.GetValue(dtypeOpt) == "float64"
                ? Classify<double>(model, p.GetValue(weightsOpt)!, batch.Cast<double>(), KernelPath.Oracle, null, out _)
                : Classify<float>(model, p.GetValue(weightsOpt)!, batch, KernelPath.Fast,
                    new InferencePlanOptions { Winograd = !p.GetValue(directOpt) }, out _));
            double totalMs = clock.Elapsed.TotalMilliseconds;
            int classes = probs[0].Length;
            if (labels is not null && labels.Length != classes)
                throw new ArgumentException($"--labels has {labels.Length} names but {model} has {classes} classes.");
            if (labels is null && classes == 1000) labels = ImageNetLabels();
            if (save is not null) OutputFile.Write(save, SetOf(batch));
            for (int i = 0; i < images.Length; i++)
            {
                var best = probs[i].Select((v, k) => (P: v, K: k)).OrderByDescending(t => t.P).ThenBy(t => t.K).Take(Math.Min(top, classes)).ToList();
                if (p.GetValue(jsonOpt))
                {
                    io.Out.WriteLine("{\"image\": " + JsonText.Quote(images[i]) + ", \"model\": " + JsonText.Quote(model) + ", \"top\": ["
                        + string.Join(", ", best.Select(t => string.Create(CultureInfo.InvariantCulture,
                            $"{{\"class\": {t.K}, \"probability\": {t.P:R}, \"label\": {JsonText.Quote(labels?[t.K] ?? t.K.ToString(CultureInfo.InvariantCulture))}}}")))
                        + "]}");
                    continue;
                }
                io.Out.WriteLine(images[i]);
                foreach (var (pr, k) in best)
                    io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {pr,8:0.0000}  {k,4}  {labels?[k] ?? ""}"));
            }
            io.Err.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{model}: {recipe.Source}: resize {recipe.ResizeTo} {recipe.Filter.ToString().ToLowerInvariant()}, crop {recipe.Size}; " +
                $"{images.Length} image(s), preprocessing {prepMs:0} ms, total {totalMs:0} ms"));
            if (save is not null) io.Err.WriteLine($"wrote {save}");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    /// <summary>One image decoded and preprocessed; a problem with it is reported naming the file.</summary>
    private static DenseTensor<float> Preprocess(ImageRecipe recipe, string path)
    {
        var image = RgbImage.Load(path); // its own errors name the file
        try
        {
            return recipe.Apply(image);
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    private static float[][] Classify<T>(string model, string weights, DenseTensor<T> x, KernelPath kernels, InferencePlanOptions? options,
        out int classes)
        where T : System.Numerics.IFloatingPointIeee754<T>
    {
        DenseTensor<T> logits;
        if (kernels == KernelPath.Fast)
        {
            // float32: the compiled inference plan (BatchNorm folded, activations fused, buffers reused).
            logits = InferencePlan<T>.Load(model, weights, options).Forward(x);
        }
        else
        {
            var net = ModelZoo.Create<T>(model);
            net.LoadStateDict(weights);
            logits = net.Forward(x, new Pass<T> { RecordTape = false, Kernels = kernels });
        }
        int n = logits.Dim(0);
        classes = logits.Length / n;
        var result = new float[n][];
        for (int i = 0; i < n; i++)
        {
            // Softmax in float64 from the logits: the probabilities printed.
            var z = logits.Data.AsSpan(i * classes, classes).ToArray().Select(double.CreateChecked).ToArray();
            double max = z.Max(), sum = 0;
            var e = z.Select(v => Math.Exp(v - max)).ToArray();
            foreach (var v in e) sum += v;
            result[i] = e.Select(v => (float)(v / sum)).ToArray();
        }
        return result;
    }

    private static DenseTensor<float> Stack(List<DenseTensor<float>> xs)
    {
        int per = xs[0].Length;
        var data = new float[checked(per * xs.Count)];
        for (int i = 0; i < xs.Count; i++) xs[i].Data.CopyTo(data, i * per);
        return new DenseTensor<float>(data, xs.Count, xs[0].Dim(1), xs[0].Dim(2), xs[0].Dim(3));
    }

    private static TensorSet<float> SetOf(DenseTensor<float> x)
    {
        var set = new TensorSet<float>("input");
        set.Set("x", x);
        return set;
    }

    private static string[]? ReadLabels(string? path) =>
        path is null ? null : Attention.Reference.IO.InputFile.ReadAllText(path, 64 << 20, "labels file")
            .Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToArray();

    /// <summary>The 1000 ImageNet-1k class names shipped with the tool.</summary>
    public static string[] ImageNetLabels()
    {
        using var s = typeof(InferCommand).Assembly.GetManifestResourceStream("imagenet_classes.txt")
            ?? throw new InvalidOperationException("the ImageNet class names are missing from the tool");
        using var r = new StreamReader(s);
        return r.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }
}
