using System.Buffers.Binary;
using System.Text;

namespace Attention.Reference.IO;

/// <summary>
/// A restricted unpickler for the <c>data.pkl</c> of a <c>torch.save</c> archive, modelled on PyTorch's
/// <c>torch/_weights_only_unpickler.py</c> but narrower: it knows only the globals a state_dict of dense tensors needs and
/// builds plain values (no Python objects, no calls other than the handful below). Globals outside PyTorch's
/// weights_only allow-list are refused as forbidden; allowed ones this reader does not handle (sparse or quantized
/// tensors, nn.Parameter via NEWOBJ, …) are refused as unsupported. Every step is bounded by the input: strings and
/// counts are checked against the bytes left, nothing recurses over values, and dict keys are interned so that no
/// operation costs more than the bytes that created its operands.
/// </summary>
internal sealed class PthUnpickler
{
    private readonly byte[] _data;
    private readonly string _source;
    private readonly Func<string, StoredDType, long, PthStorage> _loadStorage;
    private readonly Dictionary<long, object> _memo = [];
    private readonly Stack<List<object>> _metastack = new();
    private readonly Dictionary<string, string> _interned = new(StringComparer.Ordinal);
    private List<object> _stack = [];
    private int _pos, _opStart;
    private byte _op;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    private static readonly PyTuple EmptyTuple = new([]);

    /// <summary>An unpickler over <paramref name="data"/>.</summary>
    /// <param name="data">The pickle.</param>
    /// <param name="source">The name that starts every error message.</param>
    /// <param name="loadStorage">Resolves a persistent id: (key, dtype, element count) → the storage.</param>
    public PthUnpickler(byte[] data, string source, Func<string, StoredDType, long, PthStorage> loadStorage)
    {
        _data = data;
        _source = source;
        _loadStorage = loadStorage;
    }

    /// <summary>Runs the pickle to its STOP and returns the object it built.</summary>
    public object Load()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Pth.Bad(_source, "malformed pickle: data.pkl ends without STOP (truncated?)");
            _opStart = _pos;
            _op = _data[_pos++];
            switch (_op)
            {
                case 0x80: // PROTO
                    byte protocol = Take(1)[0];
                    if (protocol > 5) throw Malformed($"unknown pickle protocol {protocol}");
                    break;
                case 0x95: // FRAME: an 8-byte length; the frame's opcodes follow inline.
                    ulong frame = BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
                    if (frame > (ulong)(_data.Length - _pos)) throw Malformed($"frame of {frame} bytes runs past the end");
                    break;
                case (byte)'c': // GLOBAL module\nname\n
                    string module = ReadLine(), name = ReadLine();
                    Push(Global(module, name));
                    break;
                case 0x93: // STACK_GLOBAL
                    string stackName = PopString(), stackModule = PopString();
                    Push(Global(stackModule, stackName));
                    break;
                case (byte)'q': Memoize(Take(1)[0]); break; // BINPUT
                case (byte)'r': Memoize(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))); break; // LONG_BINPUT
                case 0x94: Memoize(_memo.Count); break; // MEMOIZE
                case (byte)'h': Push(Recall(Take(1)[0])); break; // BINGET
                case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break; // LONG_BINGET
                case (byte)'(': // MARK
                    _metastack.Push(_stack);
                    _stack = [];
                    break;
                case (byte)'}': Push(new PyDict(ordered: false)); break; // EMPTY_DICT
                case (byte)']': Push(new PyList()); break; // EMPTY_LIST
                case (byte)')': Push(EmptyTuple); break; // EMPTY_TUPLE
                case (byte)'t': Push(new PyTuple(PopMark().ToArray())); break; // TUPLE
                case 0x85: Push(new PyTuple([Pop()])); break; // TUPLE1
                case 0x86: // TUPLE2
                    object b2 = Pop(), a2 = Pop();
                    Push(new PyTuple([a2, b2]));
                    break;
                case 0x87: // TUPLE3
                    object c3 = Pop(), b3 = Pop(), a3 = Pop();
                    Push(new PyTuple([a3, b3, c3]));
                    break;
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break; // BININT
                case (byte)'K': Push((long)Take(1)[0]); break; // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break; // BININT2
                case 0x8a: Push(Long(Take(Take(1)[0]))); break; // LONG1
                case (byte)'X': Push(Text(Take(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))))); break; // BINUNICODE
                case 0x8c: Push(Text(Take(Take(1)[0]))); break; // SHORT_BINUNICODE
                case (byte)'U': Push(Text(Take(Take(1)[0]))); break; // SHORT_BINSTRING (decoded as torch.load does)
                case (byte)'T': // BINSTRING
                    int length = BinaryPrimitives.ReadInt32LittleEndian(Take(4));
                    if (length < 0) throw Malformed($"negative string length {length}");
                    Push(Text(Take(length)));
                    break;
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'N': Push(PyNone.Value); break; // NONE
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break; // BINFLOAT
                case (byte)'R': // REDUCE: top = callable(*args)
                    object args = Pop();
                    _stack[^1] = Call(Top(), args);
                    break;
                case (byte)'b': // BUILD: top.__setstate__(state)
                    object state = Pop();
                    Build(Top(), state);
                    break;
                case (byte)'s': // SETITEM
                    object value = Pop(), key = Pop();
                    TargetDict().Set(Key(key), value);
                    break;
                case (byte)'u': // SETITEMS
                    var items = PopMark();
                    if (items.Count % 2 != 0) throw Malformed($"odd number of items ({items.Count}) for a dict");
                    var dict = TargetDict();
                    for (int i = 0; i < items.Count; i += 2) dict.Set(Key(items[i]), items[i + 1]);
                    break;
                case (byte)'a': // APPEND
                    object item = Pop();
                    TargetList().Items.Add(item);
                    break;
                case (byte)'e': // APPENDS
                    var appended = PopMark();
                    TargetList().Items.AddRange(appended);
                    break;
                case (byte)'Q': Push(PersistentLoad(Pop())); break; // BINPERSID
                case (byte)'.': return Pop(); // STOP
                default:
                    throw Pth.Bad(_source, $"unsupported pickle opcode {OpLabel(_op)} at data.pkl byte {_opStart}; " +
                        "a state_dict pickle does not use it");
            }
        }
    }

    // ---- The globals and what calling them means ----

    /// <summary>Resolves a global, refusing everything a state_dict of dense tensors does not need.</summary>
    private PyGlobal Global(string module, string name)
    {
        string full = $"{module}.{name}";
        if (full == "collections.OrderedDict") return new PyGlobal(full, GlobalKind.OrderedDict);
        if (full == "torch._utils._rebuild_tensor_v2") return new PyGlobal(full, GlobalKind.RebuildTensorV2);
        if (full == "torch._utils._rebuild_parameter") return new PyGlobal(full, GlobalKind.RebuildParameter);
        if (full == "torch._utils._rebuild_parameter_with_state") return new PyGlobal(full, GlobalKind.RebuildParameterWithState);
        if (full == "torch.Size") return new PyGlobal(full, GlobalKind.TorchSize);
        if (module == "torch" && StorageTypes.TryGetValue(name, out var storageType))
            return new PyGlobal(full, GlobalKind.Storage, storageType);
        if (module == "torch" && DTypes.TryGetValue(name, out var dtype)) return new PyGlobal(full, GlobalKind.DType, dtype);
        if (AllowedByTorch(module, name))
            throw Pth.Bad(_source, $"unsupported global '{Pth.Shorten(full)}' in the pickle (torch.load(weights_only=True) " +
                "allows it, but this reader handles only dense tensors in a state_dict)");
        string hint = module.StartsWith("torch.nn.modules.", StringComparison.Ordinal) || module == "__main__"
            ? "; a whole model? save model.state_dict() instead" : "";
        throw Pth.Bad(_source, $"forbidden global '{Pth.Shorten(full)}' in the pickle " +
            $"(only torch.load(weights_only=True) globals are allowed{hint})");
    }

    /// <summary>The legacy storage classes that persistent ids name, by element type.</summary>
    private static readonly Dictionary<string, StoredDType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["HalfStorage"] = StoredDType.F16, ["BFloat16Storage"] = StoredDType.BF16, ["FloatStorage"] = StoredDType.F32,
        ["DoubleStorage"] = StoredDType.F64, ["LongStorage"] = StoredDType.I64, ["IntStorage"] = StoredDType.I32,
        ["ShortStorage"] = StoredDType.I16, ["CharStorage"] = StoredDType.I8, ["ByteStorage"] = StoredDType.U8,
        ["BoolStorage"] = StoredDType.BOOL,
    };

    /// <summary>The dtype objects (torch.float32, …) of the supported element types, under all their names.</summary>
    private static readonly Dictionary<string, StoredDType> DTypes = new(StringComparer.Ordinal)
    {
        ["float16"] = StoredDType.F16, ["half"] = StoredDType.F16, ["bfloat16"] = StoredDType.BF16,
        ["float32"] = StoredDType.F32, ["float"] = StoredDType.F32, ["float64"] = StoredDType.F64, ["double"] = StoredDType.F64,
        ["int64"] = StoredDType.I64, ["long"] = StoredDType.I64, ["int32"] = StoredDType.I32, ["int"] = StoredDType.I32,
        ["int16"] = StoredDType.I16, ["short"] = StoredDType.I16, ["int8"] = StoredDType.I8, ["uint8"] = StoredDType.U8,
        ["bool"] = StoredDType.BOOL,
    };

    /// <summary>Other globals on PyTorch's weights_only allow-list (for the message only; all of them are refused).</summary>
    private static bool AllowedByTorch(string module, string name)
    {
        bool torchModule = module == "torch" || module.StartsWith("torch.", StringComparison.Ordinal);
        return (module == "torch._utils" && name.StartsWith("_rebuild_", StringComparison.Ordinal))
            || (torchModule && (name.EndsWith("Storage", StringComparison.Ordinal)
                || name.EndsWith("Tensor", StringComparison.Ordinal)))
            || (module == "torch" && OtherTorchNames.Any(prefix => name.StartsWith(prefix, StringComparison.Ordinal)))
            || $"{module}.{name}" is "torch.nn.parameter.Parameter" or "torch.serialization._get_layout" or "torch.device"
                or "torch._tensor._rebuild_from_type_v2" or "collections.Counter" or "builtins.set" or "builtins.bytearray"
                or "builtins.complex" or "_codecs.encode";
    }

    /// <summary>Prefixes of the other dtypes and quantization schemes on PyTorch's list.</summary>
    private static readonly string[] OtherTorchNames = ["complex", "uint", "int", "float8", "qint", "quint", "per_"];

    /// <summary>REDUCE: the few calls a state_dict makes.</summary>
    private object Call(object callable, object arguments)
    {
        if (callable is not PyGlobal g) throw Malformed($"REDUCE calls {Describe(callable)}, which is not callable");
        if (arguments is not PyTuple tuple) throw Malformed($"REDUCE arguments are {Describe(arguments)}, not a tuple");
        var args = tuple.Items;
        switch (g.Kind)
        {
            case GlobalKind.OrderedDict:
                if (args.Length != 0)
                    throw Pth.Bad(_source, "collections.OrderedDict is called with arguments; only OrderedDict() is supported");
                return new PyDict(ordered: true);
            case GlobalKind.TorchSize:
                if (args.Length != 1 || args[0] is not PyTuple size) throw Malformed("torch.Size takes one tuple");
                return size; // a tuple is immutable: no copy
            case GlobalKind.RebuildTensorV2:
                return RebuildTensor(args);
            case GlobalKind.RebuildParameter or GlobalKind.RebuildParameterWithState:
                int expected = g.Kind == GlobalKind.RebuildParameter ? 3 : 4;
                if (args.Length != expected) throw Malformed($"{g.FullName} takes {expected} arguments, got {args.Length}");
                if (args[0] is not PthTensor data) throw Malformed($"{g.FullName} wraps {Describe(args[0])}, not a tensor");
                return data; // a parameter is its tensor; requires_grad, hooks and Python state do not matter here
            default:
                throw Pth.Bad(_source, $"the pickle calls '{g.FullName}'; a state_dict only names it");
        }
    }

    /// <summary>
    /// <c>_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])</c>.
    /// </summary>
    private PthTensor RebuildTensor(object[] args)
    {
        if (args.Length is not (6 or 7)) throw Malformed($"_rebuild_tensor_v2 takes 6 or 7 arguments, got {args.Length}");
        if (args[0] is not PthStorage storage) throw Malformed($"_rebuild_tensor_v2's storage is {Describe(args[0])}");
        if (args[1] is not long offset) throw Malformed($"_rebuild_tensor_v2's storage_offset is {Describe(args[1])}");
        long[] size = Ints(args[2], "size"), stride = Ints(args[3], "stride");
        if (args[4] is not (bool or long)) throw Malformed($"_rebuild_tensor_v2's requires_grad is {Describe(args[4])}");
        if (args[5] is not (PyDict or PyNone)) throw Malformed($"_rebuild_tensor_v2's backward_hooks is {Describe(args[5])}");
        if (args.Length == 7 && args[6] is not PyNone && !(args[6] is PyDict { Count: 0 }))
        {
            string keys = args[6] is PyDict metadata
                ? string.Join(", ", metadata.Items.Take(4).Select(kv => Pth.Shorten(kv.Key))) : "";
            throw Pth.Bad(_source, $"a tensor carries metadata {{{keys}}} (a negative or conjugate view); not supported");
        }
        return new PthTensor(storage, offset, size, stride);
    }

    private long[] Ints(object value, string what)
    {
        if (value is not PyTuple tuple) throw Malformed($"_rebuild_tensor_v2's {what} is {Describe(value)}, not a tuple");
        var result = new long[tuple.Items.Length];
        for (int i = 0; i < result.Length; i++)
            result[i] = tuple.Items[i] is long x ? x
                : throw Malformed($"_rebuild_tensor_v2's {what} holds {Describe(tuple.Items[i])}");
        return result;
    }

    /// <summary>BUILD: only the state_dict's OrderedDict takes a state (its <c>_metadata</c>), which is ignored.</summary>
    private void Build(object instance, object state)
    {
        if (instance is not PyDict { Ordered: true })
            throw Pth.Bad(_source, $"the pickle sets the state of {Describe(instance)}; only an OrderedDict's can be set");
        if (state is not PyDict) throw Malformed($"the state of an OrderedDict is {Describe(state)}, not a dict");
    }

    /// <summary>BINPERSID: <c>('storage', storage_type, key, location, numel)</c>, loaded from the archive.</summary>
    private PthStorage PersistentLoad(object pid)
    {
        if (pid is not PyTuple { Items: var p } || p.Length == 0 || p[0] is not "storage")
            throw Pth.Bad(_source, $"persistent id {Describe(pid)} is not a storage; only storages may be loaded");
        if (p.Length != 5) throw Malformed($"a storage's persistent id has {p.Length} fields, not 5");
        if (p[1] is not PyGlobal { Kind: GlobalKind.Storage or GlobalKind.DType } type)
            throw Malformed($"a storage's type is {Describe(p[1])}");
        if (p[2] is not string key || key.Length is 0 or > 200) throw Malformed($"a storage's key is {Describe(p[2])}");
        if (p[3] is not string) throw Malformed($"a storage's location is {Describe(p[3])}");
        if (p[4] is not long numel || numel < 0) throw Malformed($"a storage's element count is {Describe(p[4])}");
        return _loadStorage(key, type.DType, numel);
    }

    // ---- Stack, memo and input ----

    private void Push(object value) => _stack.Add(value);

    private object Pop()
    {
        if (_stack.Count == 0) throw Malformed("stack underflow");
        object top = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return top;
    }

    private object Top() => _stack.Count > 0 ? _stack[^1] : throw Malformed("stack underflow");

    private List<object> PopMark()
    {
        if (_metastack.Count == 0) throw Malformed("no MARK to pop to");
        var items = _stack;
        _stack = _metastack.Pop();
        return items;
    }

    private string PopString() => Pop() is string s ? s : throw Malformed("STACK_GLOBAL needs two strings");

    private PyDict TargetDict() => Top() as PyDict ?? throw Malformed($"cannot set an item of {Describe(Top())}");

    private PyList TargetList() => Top() as PyList ?? throw Malformed($"cannot append to {Describe(Top())}");

    private string Key(object key) =>
        key as string ?? throw Pth.Bad(_source, $"a dict key is {Describe(key)}; only str keys are supported");

    private void Memoize(long index) => _memo[index] = Top();

    private object Recall(long index) =>
        _memo.TryGetValue(index, out var value) ? value : throw Malformed($"memo {index} was never set");

    /// <summary>The next <paramref name="count"/> bytes, after checking that they are there.</summary>
    private ReadOnlySpan<byte> Take(long count)
    {
        if (count > _data.Length - _pos) throw Malformed($"truncated: needs {count} bytes, {_data.Length - _pos} left");
        var span = _data.AsSpan(_pos, (int)count);
        _pos += (int)count;
        return span;
    }

    private string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0) throw Malformed("truncated GLOBAL");
        var line = _data.AsSpan(_pos, end - _pos);
        _pos = end + 1;
        return Decode(line);
    }

    /// <summary>A string value, interned so that equal keys are one object (dicts then compare by reference).</summary>
    private string Text(ReadOnlySpan<byte> bytes)
    {
        string s = Decode(bytes);
        if (_interned.TryGetValue(s, out var canonical)) return canonical;
        _interned.Add(s, s);
        return s;
    }

    private string Decode(ReadOnlySpan<byte> bytes)
    {
        try { return StrictUtf8.GetString(bytes); }
        catch (DecoderFallbackException) { throw Malformed("a string is not valid UTF-8"); }
    }

    /// <summary>LONG1: a little-endian two's-complement integer; only 64-bit values are kept.</summary>
    private object Long(ReadOnlySpan<byte> bytes)
    {
        var value = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
        if (value < long.MinValue || value > long.MaxValue)
            throw Malformed($"integer of {bytes.Length} bytes is out of the 64-bit range");
        return (long)value;
    }

    private InvalidDataException Malformed(string what) =>
        Pth.Bad(_source, $"malformed pickle at data.pkl byte {_opStart} ({OpLabel(_op)}): {what}");

    /// <summary>A value as an error message names it.</summary>
    internal static string Describe(object value) => value switch
    {
        PyNone => "None",
        bool => "a bool",
        long => "an int",
        double => "a float",
        string s => $"the str '{Pth.Shorten(s)}'",
        PyTuple t => $"a tuple of {t.Items.Length}",
        PyList => "a list",
        PyDict { Ordered: true } => "an OrderedDict",
        PyDict => "a dict",
        PyGlobal g => $"'{g.FullName}'",
        PthStorage => "a storage",
        PthTensor => "a tensor",
        _ => value.GetType().Name,
    };

    /// <summary>An opcode as messages name it: "NEWOBJ (0x81)", or "0xd3 (not a pickle opcode)".</summary>
    private static string OpLabel(byte op) => OpName(op) is { } name ? $"{name} (0x{op:x2})" : $"0x{op:x2} (not a pickle opcode)";

    /// <summary>The name of a pickle opcode (all protocols), or null.</summary>
    private static string? OpName(byte op) => op switch
    {
        0x28 => "MARK", 0x2e => "STOP", 0x30 => "POP", 0x31 => "POP_MARK", 0x32 => "DUP", 0x46 => "FLOAT", 0x49 => "INT",
        0x4a => "BININT", 0x4b => "BININT1", 0x4c => "LONG", 0x4d => "BININT2", 0x4e => "NONE", 0x50 => "PERSID",
        0x51 => "BINPERSID", 0x52 => "REDUCE", 0x53 => "STRING", 0x54 => "BINSTRING", 0x55 => "SHORT_BINSTRING",
        0x56 => "UNICODE", 0x58 => "BINUNICODE", 0x61 => "APPEND", 0x62 => "BUILD", 0x63 => "GLOBAL", 0x64 => "DICT",
        0x7d => "EMPTY_DICT", 0x65 => "APPENDS", 0x67 => "GET", 0x68 => "BINGET", 0x69 => "INST", 0x6a => "LONG_BINGET",
        0x6c => "LIST", 0x5d => "EMPTY_LIST", 0x6f => "OBJ", 0x70 => "PUT", 0x71 => "BINPUT", 0x72 => "LONG_BINPUT",
        0x73 => "SETITEM", 0x74 => "TUPLE", 0x29 => "EMPTY_TUPLE", 0x75 => "SETITEMS", 0x47 => "BINFLOAT",
        0x80 => "PROTO", 0x81 => "NEWOBJ", 0x82 => "EXT1", 0x83 => "EXT2", 0x84 => "EXT4", 0x85 => "TUPLE1", 0x86 => "TUPLE2",
        0x87 => "TUPLE3", 0x88 => "NEWTRUE", 0x89 => "NEWFALSE", 0x8a => "LONG1", 0x8b => "LONG4", 0x42 => "BINBYTES",
        0x43 => "SHORT_BINBYTES", 0x8c => "SHORT_BINUNICODE", 0x8d => "BINUNICODE8", 0x8e => "BINBYTES8", 0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS", 0x91 => "FROZENSET", 0x92 => "NEWOBJ_EX", 0x93 => "STACK_GLOBAL", 0x94 => "MEMOIZE", 0x95 => "FRAME",
        0x96 => "BYTEARRAY8", 0x97 => "NEXT_BUFFER", 0x98 => "READONLY_BUFFER",
        _ => null,
    };
}

/// <summary>Python's None.</summary>
internal sealed class PyNone
{
    /// <summary>The one None.</summary>
    public static readonly PyNone Value = new();
    private PyNone() { }
}

/// <summary>A Python tuple (immutable).</summary>
internal sealed class PyTuple(object[] items)
{
    /// <summary>The elements.</summary>
    public object[] Items { get; } = items;
}

/// <summary>A Python list.</summary>
internal sealed class PyList
{
    /// <summary>The elements.</summary>
    public List<object> Items { get; } = [];
}

/// <summary>A dict or OrderedDict with str keys, in insertion order (a repeated key keeps its first place).</summary>
internal sealed class PyDict(bool ordered)
{
    // Keys are interned by the unpickler, so comparing by reference is comparing by value, in O(1).
    private readonly Dictionary<string, int> _index = new(ReferenceEqualityComparer.Instance);
    private readonly List<(string Key, object Value)> _items = [];

    /// <summary>Whether this is a collections.OrderedDict (the only dict BUILD may set a state on).</summary>
    public bool Ordered { get; } = ordered;

    /// <summary>The number of keys.</summary>
    public int Count => _items.Count;

    /// <summary>The items in insertion order.</summary>
    public IReadOnlyList<(string Key, object Value)> Items => _items;

    /// <summary>d[key] = value.</summary>
    public void Set(string key, object value)
    {
        if (_index.TryGetValue(key, out int i)) _items[i] = (key, value);
        else
        {
            _index.Add(key, _items.Count);
            _items.Add((key, value));
        }
    }
}

/// <summary>The globals the unpickler accepts.</summary>
internal enum GlobalKind { OrderedDict, RebuildTensorV2, RebuildParameter, RebuildParameterWithState, TorchSize, Storage, DType }

/// <summary>An accepted global: its dotted name, what it is, and for storages and dtypes the element type.</summary>
internal sealed record PyGlobal(string FullName, GlobalKind Kind, StoredDType DType = default);
