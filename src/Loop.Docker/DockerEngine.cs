namespace Loop.Docker;

using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using global::Docker.DotNet;
using global::Docker.DotNet.X509;

/// <summary>One Docker engine, reached through Docker.DotNet. The API version is negotiated on
/// first use (the server's, capped at <see cref="MaxApiVersion"/>) and every call speaks it, so
/// an older engine is never sent what it does not know.</summary>
public sealed class DockerEngine : IDisposable
{
    /// <summary>The API the Docker.DotNet models are generated against (Docker 29.4); a newer server is spoken to in it.</summary>
    public static readonly Version MaxApiVersion = new(1, 54);

    private readonly DockerEndpoint? _endpoint;
    private readonly string? _misconfigured;
    private readonly SemaphoreSlim _connecting = new(1, 1);
    private DockerClient? _client;

    public DockerEngine(DockerEndpoint endpoint)
    {
        _endpoint = endpoint;
        Endpoint = endpoint.Host;
    }

    /// <summary>An engine whose settings are wrong: every call says why, as for an engine that is down.</summary>
    private DockerEngine(DockerEndpointException error)
    {
        Endpoint = error.Where;
        _misconfigured = error.Message;
    }

    /// <summary>The engine the docker CLI would use (DOCKER_HOST, contexts). Settings that cannot
    /// work do not throw here: the engine reports them as unreachable when used.</summary>
    public static DockerEngine FromEnvironment() => From(DockerEndpoint.FromEnvironment);

    internal static DockerEngine From(Func<DockerEndpoint> resolve)
    {
        try
        {
            return new DockerEngine(resolve());
        }
        catch (DockerEndpointException error)
        {
            return new DockerEngine(error);
        }
    }

    /// <summary>"unix:///var/run/docker.sock", "tcp://host:2376", or what the settings named.</summary>
    public string Endpoint { get; }

    /// <summary>The API version spoken, once negotiated.</summary>
    public string? ApiVersion => _client?.Options.ApiVersion?.ToString();

    /// <summary>A client speaking the negotiated API version.</summary>
    /// <exception cref="DockerUnavailableException">The engine cannot be reached.</exception>
    public async Task<IDockerClient> ConnectAsync(CancellationToken cancellationToken)
    {
        if (_client is { } connected)
        {
            return connected;
        }

        await _connecting.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_client is null)
            {
                // Unversioned on purpose: /version is how we learn which version to speak.
                using var probe = Build(apiVersion: null);
                var server = Version.Parse((await probe.System.GetVersionAsync(cancellationToken).ConfigureAwait(false)).APIVersion);
                _client = Build(server < MaxApiVersion ? server : MaxApiVersion);
            }
            return _client;
        }
        catch (Exception e) when (IsUnreachable(e))
        {
            throw Unreachable(e);
        }
        finally
        {
            _connecting.Release();
        }
    }

    /// <summary>Checks the engine answers; returns the API version spoken to it.</summary>
    public async Task<string> PingAsync(CancellationToken cancellationToken)
    {
        var client = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await client.System.PingAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsUnreachable(e))
        {
            throw Unreachable(e);
        }
        return ApiVersion!;
    }

    /// <summary>Failures to reach the engine at all, as opposed to errors it answered with.</summary>
    public static bool IsUnreachable(Exception e) =>
        e is DockerUnavailableException or HttpRequestException or SocketException or AuthenticationException;

    public DockerUnavailableException Unreachable(Exception e) => e as DockerUnavailableException
        ?? new DockerUnavailableException($"Docker engine not reachable at {Endpoint}: {Reason(e)}", e);

    /// <summary>The engine's own words: its errors are {"message": "..."}.</summary>
    public static string Message(DockerApiException e)
    {
        try
        {
            using var body = JsonDocument.Parse(e.ResponseBody ?? "");
            if (body.RootElement.ValueKind == JsonValueKind.Object
                && body.RootElement.TryGetProperty("message", out var message)
                && message.GetString() is { Length: > 0 } text)
            {
                return text;
            }
        }
        catch (JsonException)
        {
        }
        return string.IsNullOrWhiteSpace(e.ResponseBody) ? $"Docker engine answered {(int)e.StatusCode}" : e.ResponseBody.Trim();
    }

    public void Dispose()
    {
        _client?.Dispose();
        _connecting.Dispose();
    }

    private DockerClient Build(Version? apiVersion)
    {
        if (_misconfigured is not null || _endpoint is null)
        {
            throw new DockerUnavailableException($"Docker engine not reachable at {Endpoint}: {_misconfigured}");
        }

        var builder = new DockerClientBuilder().WithEndpoint(new Uri(_endpoint.Host)).WithApiVersion(apiVersion);
        if (_endpoint.TlsDirectory is { } tls && _endpoint.Host.StartsWith("tcp://", StringComparison.Ordinal))
        {
            builder = builder.WithAuthProvider(TlsCredentials(tls));
        }
        return builder.Build();
    }

    /// <summary>As the CLI with DOCKER_TLS_VERIFY: the engine's certificate must chain to ca.pem (or
    /// to the system's roots without one) and name the host; cert.pem and key.pem, when there,
    /// are our client certificate.</summary>
    private CertificateCredentials TlsCredentials(string directory)
    {
        string Pem(string name) => Path.Combine(directory, name);
        try
        {
            var client = File.Exists(Pem("cert.pem")) && File.Exists(Pem("key.pem"))
                ? X509Certificate2.CreateFromPemFile(Pem("cert.pem"), Pem("key.pem"))
                : null;
            var credentials = new CertificateCredentials(client);
            if (File.Exists(Pem("ca.pem")))
            {
                var authority = X509CertificateLoader.LoadCertificateFromFile(Pem("ca.pem"));
                credentials.ServerCertificateValidationCallback = (_, certificate, _, errors) =>
                    certificate is not null
                    && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None
                    && ChainsTo(certificate, authority);
            }
            return credentials;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new DockerUnavailableException($"Docker engine not reachable at {Endpoint}: cannot read the TLS certificates in {directory}: {e.Message}", e);
        }
    }

    private static bool ChainsTo(X509Certificate certificate, X509Certificate2 authority)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        using var presented = new X509Certificate2(certificate);
        return chain.Build(presented);
    }

    /// <summary>"Connection refused", "no such socket": the socket's words beat the HTTP layer's "Connection failed."</summary>
    private string Reason(Exception e)
    {
        // A missing unix socket reads "Cannot assign requested address" otherwise.
        if (_endpoint?.Host is { } host && host.StartsWith("unix://", StringComparison.Ordinal) && !File.Exists(host["unix://".Length..]))
        {
            return "no such socket";
        }
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException socket)
            {
                return socket.Message;
            }
        }
        return (e.InnerException ?? e).Message;
    }
}

/// <summary>The engine could not be reached at all (socket missing, refused, TLS refused, settings wrong).</summary>
public sealed class DockerUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
