using Attention.Reference.IO;
using Attention.Reference.Layers;

namespace Attention.Reference.Models;

/// <summary>
/// A state_dict does not fit a model: every missing key, unexpected key and shape mismatch in one message, as
/// PyTorch's <c>load_state_dict</c> reports them.
/// </summary>
public sealed class StateDictException : FormatException
{
    /// <summary>Creates the exception.</summary>
    public StateDictException(string message, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected,
        IReadOnlyList<string> mismatched) : base(message)
    {
        Missing = missing;
        Unexpected = unexpected;
        Mismatched = mismatched;
    }

    /// <summary>Keys the model has and the state_dict lacks.</summary>
    public IReadOnlyList<string> Missing { get; }

    /// <summary>Keys the state_dict has and the model lacks.</summary>
    public IReadOnlyList<string> Unexpected { get; }

    /// <summary>Keys whose shapes differ, each "key: expected [..], got [..]".</summary>
    public IReadOnlyList<string> Mismatched { get; }
}

/// <summary>What one network pass produced.</summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class NetworkOutputs<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>
    /// <c>y</c>; with an upstream gradient also <c>x.grad</c> and <c>&lt;name&gt;.grad</c> for every learnable parameter
    /// (state_dict order); in training mode the updated <c>&lt;bn&gt;.running_mean</c> / <c>running_var</c>.
    /// </summary>
    public required TensorSet<T> Tensors { get; init; }

    /// <summary>The module dump, when one was asked for.</summary>
    public ModuleDump<T>? Dump { get; init; }
}

/// <summary>
/// A whole network: a named layer tree with its state_dict. Build one with <c>ModelZoo.Create</c>, load
/// weights with <see cref="LoadStateDict(string)"/>, run it with <see cref="Forward"/> or <see cref="Run"/>.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class Network<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>Wraps a root layer (assigning every module's path).</summary>
    public Network(string name, Layer<T> root)
    {
        ArgumentNullException.ThrowIfNull(root);
        Name = name;
        Root = root;
        root.AssignPaths();
    }

    /// <summary>The model's name (<c>seresnet50</c>, ...).</summary>
    public string Name { get; }

    /// <summary>The root of the layer tree.</summary>
    public Layer<T> Root { get; }

    /// <summary>The state_dict: every parameter and buffer by name, in PyTorch's order (values, not copies).</summary>
    public TensorSet<T> StateDict()
    {
        var set = new TensorSet<T>($"{Name} state_dict");
        foreach (var (name, p) in Root.NamedTensors()) set.Set(name, p.Value);
        return set;
    }

    /// <summary>Loads a state_dict file (<c>.safetensors</c>, or <c>.pth</c>/<c>.pt</c> as <c>torch.save</c> writes it).</summary>
    /// <exception cref="StateDictException">Missing, unexpected or mis-shaped keys (all listed).</exception>
    public void LoadStateDict(string path) => LoadStateDict(StateDictFile.Read(path), Path.GetFileName(path));

    /// <summary>
    /// Loads a state_dict strictly (see <see cref="StateDictBinder"/>): every parameter and buffer must be present
    /// with its shape and nothing else may be; BatchNorm's integer <c>num_batches_tracked</c> is accepted and
    /// ignored; a <c>module.</c> prefix on every key (DataParallel / DDP) is stripped. Nothing changes unless
    /// everything fits.
    /// </summary>
    /// <exception cref="StateDictException">Missing, unexpected or mis-shaped keys (all listed in one message).</exception>
    public void LoadStateDict(IReadOnlyList<StoredTensor> state, string source) => StateDictBinder.Bind(Root, state, source, Name);

    /// <summary>Loads a state_dict given as tensors (the same strict rules; the arrays are used, not copied).</summary>
    public void LoadStateDict(TensorSet<T> state) => StateDictBinder.Bind(Root, state, Name);

    /// <summary>Runs the forward pass (eval mode, oracle kernels unless <paramref name="pass"/> says otherwise).</summary>
    public DenseTensor<T> Forward(DenseTensor<T> x, Pass<T>? pass = null) =>
        Root.Forward(x, pass ?? new Pass<T> { RecordTape = false });

    /// <summary>
    /// One forward pass and, when <paramref name="dy"/> is given, one backward pass; returns the outputs a network
    /// case names (see <see cref="NetworkOutputs{T}"/>).
    /// </summary>
    public NetworkOutputs<T> Run(DenseTensor<T> x, DenseTensor<T>? dy, bool training, KernelPath kernels = KernelPath.Oracle,
        Action<string, DenseTensor<T>>? onModuleOutput = null, TraceLog? trace = null, bool dump = false,
        GradConventions conventions = GradConventions.Exact, Action<string, DenseTensor<T>>? onGate = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        var pass = new Pass<T>
        {
            Training = training, Kernels = kernels, RecordTape = dy is not null,
            Dump = dump ? new ModuleDump<T>() : null, OnModuleOutput = onModuleOutput, Trace = trace, Conventions = conventions, OnGate = onGate,
        };
        var outputs = new TensorSet<T>("outputs");
        var y = Root.Forward(x, pass);
        outputs.Set("y", y);
        if (dy is not null)
        {
            ShapeUtil.Require(dy, "y.grad", y.ShapeArray());
            Root.ZeroGrad();
            outputs.Set("x.grad", Root.Backward(dy, pass));
            foreach (var (name, p) in Root.NamedParameters())
                outputs.Set(name + ".grad", p.GradInGivenShape());
        }
        if (training)
            foreach (var (name, p) in Root.NamedTensors())
                if (!p.Learnable) outputs.Set(name, p.Value);
        return new NetworkOutputs<T> { Tensors = outputs, Dump = pass.Dump };
    }
}

/// <summary>Reads state_dict files by extension: <c>.safetensors</c>, or <c>.pth</c> / <c>.pt</c> / <c>.bin</c> (torch.save).</summary>
public static class StateDictFile
{
    /// <summary>The tensors of a state_dict file, in file order.</summary>
    public static List<StoredTensor> Read(string path)
    {
        string ext = Path.GetExtension(path).ToLowerInvariant();
        return ext switch
        {
            ".safetensors" => SafeTensors.Read(path),
            ".pth" or ".pt" or ".bin" => Pth.Read(path),
            _ => throw new InvalidDataException($"{path}: unknown state_dict format '{ext}'; use .safetensors, .pth or .pt."),
        };
    }
}
