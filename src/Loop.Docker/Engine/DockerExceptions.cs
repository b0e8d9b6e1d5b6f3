namespace Loop.Docker.Engine;

using System.Net;

/// <summary>The engine could not be reached at all (socket missing, refused, not a Docker daemon).</summary>
public sealed class DockerUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The engine answered with an error; <see cref="Exception.Message"/> is the engine's own message.</summary>
public sealed class DockerApiException(HttpStatusCode statusCode, string message) : Exception(message)
{
    public HttpStatusCode StatusCode { get; } = statusCode;
}
