namespace Loop.Hosting;

using Loop.Config;
using Microsoft.Extensions.Logging;

/// <summary>The daemon's console logging: <c>log_level</c> and <c>log_format</c>, with the chatter of
/// the libraries under it kept out.</summary>
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
        if (config.LogFormat == LogFormat.Json)
        {
            logging.AddJsonConsole(o => o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ");
        }
        else
        {
            logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
                o.UseUtcTimestamp = true;
            });
        }
    }
}
