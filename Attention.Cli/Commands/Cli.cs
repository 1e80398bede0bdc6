using System.CommandLine;
using System.Text.Json;
using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.Tensors;

namespace Attention.Cli.Commands;

/// <summary>Exit codes of attention-ref.</summary>
public static class ExitCodes
{
    /// <summary>Success.</summary>
    public const int Ok = 0;
    /// <summary>A numerical disagreement (compare, verify).</summary>
    public const int Mismatch = 1;
    /// <summary>Bad input or usage; the message is on stderr.</summary>
    public const int BadInput = 2;
    /// <summary>An internal error (a bug): please report it.</summary>
    public const int InternalError = 3;
}

/// <summary>Builds the command tree and runs it with the exit-code conventions.</summary>
public static class Cli
{
    /// <summary>Runs attention-ref with <paramref name="args"/>, writing to the given streams.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand(
            "attention-ref: exact reference forward and backward passes for SE, Coordinate Attention, GCT and conv2d.\n" +
            "Exit codes: 0 success, 1 numerical disagreement, 2 bad input or usage, 3 internal error.");
        var io = new CliIO(stdout, stderr);
        root.Subcommands.Add(RunCommand.Create(io));
        root.Subcommands.Add(CompareCommand.Create(io));
        root.Subcommands.Add(VerifyCommand.Create(io));
        root.Subcommands.Add(PackCommand.Create(io));
        root.Subcommands.Add(BenchCommand.Create(io));
        root.Subcommands.Add(TraceCommand.Create(io));
        root.Subcommands.Add(OnnxCommand.Create(io));
        root.Subcommands.Add(ExportCommand.Create(io));
        root.Subcommands.Add(InferCommand.Create(io));

        if (args.Length == 0)
        {
            // No command: show what there is, as --help does, and say so on stderr.
            root.Parse(["--help"]).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
            stderr.WriteLine("attention-ref: no command given.");
            return ExitCodes.BadInput;
        }
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors) stderr.WriteLine($"attention-ref: {CliMessages.Friendly(e.Message)}");
            stderr.WriteLine("Run 'attention-ref --help' for usage.");
            return ExitCodes.BadInput;
        }
        if (parse.Action is null)
        {
            stderr.WriteLine("attention-ref: no command given. Run 'attention-ref --help' for usage.");
            return ExitCodes.BadInput;
        }
        return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
    }
}

/// <summary>Parse-error wording for people.</summary>
public static partial class CliMessages
{
    [System.Text.RegularExpressions.GeneratedRegex(@"Cannot parse argument '(?<v>.*)' for option '(?<o>[^']+)' as expected type '(?<t>[^']+)'\.?")]
    private static partial System.Text.RegularExpressions.Regex ParseFailure();

    /// <summary>"--rtol expects a number, got 'abc'." instead of .NET type names.</summary>
    public static string Friendly(string message)
    {
        var m = ParseFailure().Match(message);
        if (!m.Success) return message;
        string t = m.Groups["t"].Value;
        string what = t.Contains("Double", StringComparison.Ordinal) ? "a number"
            : t.Contains("Int32", StringComparison.Ordinal) ? "a whole number"
            : t.Contains("Boolean", StringComparison.Ordinal) ? "true or false" : "a value of another form";
        return $"{m.Groups["o"].Value} expects {what}, got '{m.Groups["v"].Value}'.";
    }
}

/// <summary>The output streams, and the guard that maps exceptions to exit codes.</summary>
public sealed class CliIO(TextWriter stdout, TextWriter stderr)
{
    /// <summary>Standard output.</summary>
    public TextWriter Out { get; } = stdout;
    /// <summary>Standard error.</summary>
    public TextWriter Err { get; } = stderr;

    /// <summary>Runs <paramref name="body"/>; bad input becomes exit 2 with its message on stderr.</summary>
    public int Guard(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (IsBadInput(e))
        {
            Err.WriteLine($"attention-ref: {e.Message}");
            return ExitCodes.BadInput;
        }
        catch (Exception e)
        {
            Err.WriteLine($"attention-ref: internal error: {e}");
            return ExitCodes.InternalError;
        }
    }

    /// <summary>True for the exceptions that mean the input (files, config, arguments) is bad.</summary>
    public static bool IsBadInput(Exception e) => e is CaseFormatException or ShapeMismatchException or ArgumentException
        or InvalidDataException or IOException or UnauthorizedAccessException or JsonException or KeyNotFoundException
        or FormatException or NotSupportedException or OverflowException;
}
