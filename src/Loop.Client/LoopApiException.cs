namespace Loop.Client;

/// <summary>A request the daemon refused, or could not be sent. <see cref="Exception.Message"/>
/// is meant for the user as is: the daemon's problem detail, or how to reach the daemon.</summary>
public sealed class LoopApiException : Exception
{
    public LoopApiException(string message, int? statusCode = null, IReadOnlyDictionary<string, string[]>? errors = null, Exception? inner = null)
        : base(message, inner)
    {
        StatusCode = statusCode;
        Errors = errors ?? new Dictionary<string, string[]>();
    }

    /// <summary>The HTTP status; null when no answer came (daemon unreachable, timeout).</summary>
    public int? StatusCode { get; }

    /// <summary>Field errors of a 400: request field name to messages.</summary>
    public IReadOnlyDictionary<string, string[]> Errors { get; }

    /// <summary>True when the daemon never answered.</summary>
    public bool IsUnreachable => StatusCode is null;
}
