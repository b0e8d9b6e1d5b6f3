namespace Loop.Hosting;

using System.Text.Json;
using Loop.Config;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

/// <summary>The daemon's console logging: <c>log_level</c> and <c>log_format</c>, with the chatter of
/// the libraries under it kept out, each line naming its component in a word (<see cref="LoopConsoleFormatter"/>).</summary>
public static class LoopLogging
{
    public static void Configure(ILoggingBuilder logging, LoopConfig config)
    {
        var level = config.LogLevel switch
        {
            LogSeverity.Trace => LogLevel.Trace,
            LogSeverity.Debug => LogLevel.Debug,
            LogSeverity.Info => LogLevel.Information,
            LogSeverity.Warn => LogLevel.Warning,
            LogSeverity.Error => LogLevel.Error,
            LogSeverity.Critical => LogLevel.Critical,
            _ => throw new ArgumentOutOfRangeException(nameof(config), config.LogLevel, "unknown log level"),
        };
        logging.SetMinimumLevel(level);
        // Per-request logs would cost more than the requests themselves.
        logging.AddFilter("Microsoft", LogLevel.Warning);
        logging.AddFilter("System.Net.Http", LogLevel.Warning);
        // The silo's own chatter (membership, activation counts) is for debugging Orleans, not Loop.
        logging.AddFilter("Orleans", LogLevel.Warning);
        // Orleans' placement retries through Polly, which logs every attempt at Information.
        logging.AddFilter("Polly", LogLevel.Warning);
        // A failed start (say, the port is taken) is reported in one line below, not as the host's stack trace.
        logging.AddFilter("Microsoft.Extensions.Hosting", LogLevel.None);
        var json = config.LogFormat == LogFormat.Json;
        logging.AddConsole(o => o.FormatterName = json ? LoopConsoleFormatter.JsonName : LoopConsoleFormatter.TextName);
        logging.AddConsoleFormatter<LoopTextFormatter, ConsoleFormatterOptions>();
        logging.AddConsoleFormatter<LoopJsonFormatter, ConsoleFormatterOptions>();
    }
}

/// <summary>
/// A log entry as Loop writes it: UTC time, level, component, message, and an exception after it.
/// The component is the logger's name in a word: the class for Loop's own ("NodeLifecycle" is
/// <c>node-lifecycle</c>), the library for others (<c>orleans</c>, <c>aspnetcore</c>).
/// </summary>
public abstract class LoopConsoleFormatter(string name) : ConsoleFormatter(name)
{
    public const string TextName = "loop";
    public const string JsonName = "loop-json";

    public static string ComponentOf(string category)
    {
        var parts = category.Split('.');
        var word = parts[0] switch
        {
            "Loop" => parts[^1],
            "Microsoft" when parts.Length > 1 => parts[1],
            "ModelContextProtocol" => "mcp",
            _ => parts[0],
        };
        var text = new System.Text.StringBuilder(word.Length + 4);
        for (var i = 0; i < word.Length; i++)
        {
            if (char.IsUpper(word[i]) && i > 0 && (char.IsLower(word[i - 1]) || (i + 1 < word.Length && char.IsLower(word[i + 1]))))
            {
                text.Append('-');
            }
            text.Append(char.ToLowerInvariant(word[i]));
        }
        return text.ToString();
    }

    protected static string LevelOf(LogLevel level) => level switch
    {
        LogLevel.Trace => "trace",
        LogLevel.Debug => "debug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "error",
        LogLevel.Critical => "critical",
        _ => "none",
    };

    protected static string Now() => DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture);
}

public sealed class LoopTextFormatter() : LoopConsoleFormatter(TextName)
{
    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        textWriter.Write($"{Now()} {LevelOf(logEntry.LogLevel)} {ComponentOf(logEntry.Category)}: {message.ReplaceLineEndings(" ")}\n");
        if (logEntry.Exception is { } error)
        {
            textWriter.Write(error.ToString() + "\n");
        }
    }
}

public sealed class LoopJsonFormatter() : LoopConsoleFormatter(JsonName)
{
    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("Timestamp", Now());
            json.WriteString("LogLevel", logEntry.LogLevel.ToString());
            json.WriteString("Component", ComponentOf(logEntry.Category));
            json.WriteString("Message", logEntry.Formatter(logEntry.State, logEntry.Exception));
            if (logEntry.Exception is { } error)
            {
                json.WriteString("Exception", error.ToString());
            }
            json.WriteEndObject();
        }
        textWriter.Write(System.Text.Encoding.UTF8.GetString(buffer.ToArray()) + "\n");
    }
}
