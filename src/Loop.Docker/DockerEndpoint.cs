namespace Loop.Docker;

using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

/// <summary>Where the Docker engine listens, found as the docker CLI finds it: <c>DOCKER_HOST</c>;
/// else the context named by <c>DOCKER_CONTEXT</c>, else <c>currentContext</c> in
/// <c>$DOCKER_CONFIG/config.json</c>; else (or for the context "default") the default socket.</summary>
/// <param name="Host">"unix:///path/to/docker.sock" or "tcp://host:port".</param>
/// <param name="TlsDirectory">For a tcp host reached over TLS: the directory holding ca.pem,
/// cert.pem and key.pem (the CLI's names). Null for a plain connection.</param>
public sealed record DockerEndpoint(string Host, string? TlsDirectory = null)
{
    public const string DefaultHost = "unix:///var/run/docker.sock";
    private const string UnixScheme = "unix://";

    /// <summary>The path of the engine's unix socket; null for an engine reached over tcp.</summary>
    public string? SocketPath => Host.StartsWith(UnixScheme, StringComparison.Ordinal) ? Host[UnixScheme.Length..] : null;

    public static DockerEndpoint FromEnvironment() =>
        Resolve(Environment.GetEnvironmentVariable, Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));

    /// <summary>The unix socket of the engine <see cref="FromEnvironment"/> finds; null when that engine
    /// is reached over tcp or the settings name none Loop can reach.</summary>
    public static string? SocketPathFromEnvironment()
    {
        try
        {
            return FromEnvironment().SocketPath;
        }
        catch (DockerEndpointException)
        {
            return null;
        }
    }

    /// <param name="environment">Reads an environment variable; empty counts as unset, as in the CLI.</param>
    /// <param name="home">The user's home, where ~/.docker is.</param>
    /// <exception cref="DockerEndpointException">The settings name an engine Loop cannot reach.</exception>
    public static DockerEndpoint Resolve(Func<string, string?> environment, string home)
    {
        string? Variable(string name) => environment(name) is { Length: > 0 } value ? value : null;

        var configDir = Variable("DOCKER_CONFIG") ?? Path.Combine(home, ".docker");
        if (Variable("DOCKER_HOST") is { } host)
        {
            var where = host.Trim();
            if (Variable("DOCKER_TLS_VERIFY") is not null)
            {
                return FromHost(where, where, Variable("DOCKER_CERT_PATH") ?? configDir);
            }
            if (Variable("DOCKER_TLS") is not null)
            {
                throw new DockerEndpointException(where, "DOCKER_TLS without DOCKER_TLS_VERIFY (TLS that does not check the engine's certificate) is not supported; set DOCKER_TLS_VERIFY=1");
            }
            return FromHost(where, where, tlsDirectory: null);
        }

        var context = Variable("DOCKER_CONTEXT") ?? CurrentContext(configDir);
        return context is null or "default" ? new DockerEndpoint(DefaultHost) : FromContext(context, configDir);
    }

    private static string? CurrentContext(string configDir)
    {
        var file = Path.Combine(configDir, "config.json");
        if (!File.Exists(file))
        {
            return null;
        }
        try
        {
            using var config = JsonDocument.Parse(File.ReadAllText(file));
            return config.RootElement.ValueKind == JsonValueKind.Object
                && config.RootElement.TryGetProperty("currentContext", out var current)
                && current.ValueKind == JsonValueKind.String
                && current.GetString() is { Length: > 0 } name ? name : null;
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new DockerEndpointException("the current Docker context", $"cannot read {file}: {e.Message}");
        }
    }

    /// <summary>A context's endpoint is in contexts/meta/&lt;sha256 of its name&gt;/meta.json, its TLS
    /// files (if any) in contexts/tls/&lt;same&gt;/docker/.</summary>
    private static DockerEndpoint FromContext(string name, string configDir)
    {
        var where = $"context \"{name}\"";
        var id = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(name)));
        var meta = Path.Combine(configDir, "contexts", "meta", id, "meta.json");
        string? host;
        bool skipTlsVerify;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(meta));
            var docker = document.RootElement.GetProperty("Endpoints").GetProperty("docker");
            host = docker.TryGetProperty("Host", out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
            skipTlsVerify = docker.TryGetProperty("SkipTLSVerify", out var skip) && skip.ValueKind == JsonValueKind.True;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new DockerEndpointException(where, $"there is no such context ({meta} is missing); `docker context ls` lists them");
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            throw new DockerEndpointException(where, $"cannot read its Endpoints.docker in {meta}: {e.Message}");
        }

        if (string.IsNullOrWhiteSpace(host))
        {
            throw new DockerEndpointException(where, $"{meta} has no Endpoints.docker.Host");
        }
        if (skipTlsVerify)
        {
            throw new DockerEndpointException(where, "it skips TLS verification, which is not supported");
        }
        var tls = Path.Combine(configDir, "contexts", "tls", id, "docker");
        return FromHost(host.Trim(), where, Directory.Exists(tls) && Directory.EnumerateFiles(tls).Any() ? tls : null);
    }

    /// <summary>As the CLI reads a host: a scheme is unix:// or tcp://, none means tcp, and a tcp
    /// host without a port gets 2375 (2376 with TLS).</summary>
    private static DockerEndpoint FromHost(string host, string where, string? tlsDirectory)
    {
        if (host.StartsWith(UnixScheme, StringComparison.Ordinal))
        {
            if (host.Length == UnixScheme.Length)
            {
                throw new DockerEndpointException(where, "the unix:// host names no socket");
            }
            return new DockerEndpoint(host);
        }

        var text = host.Contains("://", StringComparison.Ordinal) ? host : "tcp://" + host;
        if (!text.StartsWith("tcp://", StringComparison.Ordinal))
        {
            throw new DockerEndpointException(where, $"{host[..host.IndexOf("://", StringComparison.Ordinal)]}:// hosts are not supported, only unix:// and tcp://");
        }
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Host.Length == 0)
        {
            throw new DockerEndpointException(where, $"{host} is not a valid Docker host (e.g. unix:///var/run/docker.sock or tcp://host:2376)");
        }
        var port = uri.IsDefaultPort || uri.Port < 0 ? (tlsDirectory is null ? 2375 : 2376) : uri.Port;
        var name = uri.HostNameType == UriHostNameType.IPv6 ? $"[{uri.IdnHost}]" : uri.IdnHost;
        return new DockerEndpoint($"tcp://{name}:{port}", tlsDirectory);
    }
}

/// <summary>The Docker settings (DOCKER_HOST, a context) name an engine Loop cannot reach.</summary>
/// <param name="Where">What the settings point at, as a user would name it: the host, or the context.</param>
public sealed class DockerEndpointException(string where, string problem) : Exception(problem)
{
    public string Where { get; } = where;
}
