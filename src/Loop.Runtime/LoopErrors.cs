namespace Loop.Runtime;

/// <summary>The caller asked for something malformed. <see cref="Field"/> names what to fix.</summary>
public sealed class LoopValidationException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}

/// <summary>The thing asked for does not exist.</summary>
public sealed class LoopNotFoundException(string message) : Exception(message);

/// <summary>The request is well formed but conflicts with the current state (e.g. cancelling a finished run).</summary>
public sealed class LoopConflictException(string message) : Exception(message);

/// <summary>The caller is known but not allowed to do this (e.g. a channel token on another channel).</summary>
public sealed class LoopForbiddenException(string message) : Exception(message);

/// <summary>The caller must authenticate (or its token is not valid).</summary>
public sealed class LoopUnauthorizedException(string message) : Exception(message);

/// <summary>The caller tried too often; it may try again after <see cref="RetryAfter"/>.</summary>
public sealed class LoopTooManyRequestsException(string message, TimeSpan retryAfter) : Exception(message)
{
    public TimeSpan RetryAfter { get; } = retryAfter;
}
