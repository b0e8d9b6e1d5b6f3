namespace Loop.Docker.Engine;

using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

/// <summary>A thin typed client for the Docker Engine API over its unix socket. The API version is
/// negotiated once (the server's, capped at <see cref="MaxApiVersion"/>) and prefixes every call.</summary>
public sealed class DockerEngineClient : IDisposable
{
    public const string DefaultEndpoint = "unix:///var/run/docker.sock";

    /// <summary>The newest API this client is written against; an older server wins.</summary>
    public static readonly Version MaxApiVersion = new(1, 43);

    private static readonly JsonSerializerOptions Json = new()
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private readonly HttpClient _http;
    private readonly SemaphoreSlim _negotiation = new(1, 1);
    private string? _versionPrefix;

    /// <param name="endpoint">"unix:///path/to/docker.sock"; null or empty reads DOCKER_HOST, then the default socket.</param>
    public DockerEngineClient(string? endpoint = null)
    {
        Endpoint = NonEmpty(endpoint) ?? NonEmpty(Environment.GetEnvironmentVariable("DOCKER_HOST")) ?? DefaultEndpoint;
        if (!Endpoint.StartsWith("unix://", StringComparison.Ordinal))
        {
            throw new DockerUnavailableException($"Docker endpoint {Endpoint} is not supported: only unix:// sockets are");
        }

        SocketPath = Endpoint["unix://".Length..];
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = (_, ct) => ConnectAsync(ct),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
        };
        // The host name is never resolved: every connection goes to the socket.
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://docker"), Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>The endpoint as given or resolved, e.g. "unix:///var/run/docker.sock".</summary>
    public string Endpoint { get; }

    public string SocketPath { get; }

    /// <summary>Checks the engine answers and returns the API version this client speaks to it.</summary>
    public async Task<string> PingAsync(CancellationToken cancellationToken)
    {
        var prefix = await VersionPrefixAsync(cancellationToken).ConfigureAwait(false);
        using var response = await SendAsync(HttpMethod.Get, $"{prefix}/_ping", null, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        return prefix[2..];
    }

    public async Task<bool> ImageExistsAsync(string name, CancellationToken cancellationToken)
    {
        using var response = await SendVersionedAsync(HttpMethod.Get, $"/images/{Uri.EscapeDataString(name)}/json", null, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }

        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Builds an image from a tar build context, reporting each line of the build's output.
    /// Throws <see cref="DockerApiException"/> with the daemon's message when a step fails.</summary>
    public async Task BuildImageAsync(Stream tarContext, string tag, IReadOnlyDictionary<string, string> buildArgs, Action<string> progress, CancellationToken cancellationToken)
    {
        var query = $"/build?t={Uri.EscapeDataString(tag)}&rm=1&forcerm=1&buildargs={Uri.EscapeDataString(JsonSerializer.Serialize(buildArgs))}";
        var content = new StreamContent(tarContext);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-tar");
        using var response = await SendVersionedAsync(HttpMethod.Post, query, content, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);

        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), Encoding.UTF8);
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.TryGetProperty("errorDetail", out var detail) && detail.TryGetProperty("message", out var detailMessage))
            {
                throw new DockerApiException(HttpStatusCode.OK, detailMessage.GetString() ?? "image build failed");
            }

            if (root.TryGetProperty("error", out var error))
            {
                throw new DockerApiException(HttpStatusCode.OK, error.GetString() ?? "image build failed");
            }

            foreach (var key in (ReadOnlySpan<string>)["stream", "status"])
            {
                if (root.TryGetProperty(key, out var text) && text.GetString() is { } message)
                {
                    foreach (var part in message.Split('\n'))
                    {
                        var trimmed = part.TrimEnd('\r');
                        if (trimmed.Length > 0)
                        {
                            progress(trimmed);
                        }
                    }
                }
            }
        }
    }

    /// <summary>Creates a container and returns its id. A missing image is a 404 <see cref="DockerApiException"/>.</summary>
    public async Task<string> CreateContainerAsync(ContainerCreateRequest request, string? name, CancellationToken cancellationToken)
    {
        var path = name is null ? "/containers/create" : $"/containers/create?name={Uri.EscapeDataString(name)}";
        using var content = ToJsonContent(request);
        using var response = await SendVersionedAsync(HttpMethod.Post, path, content, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        using var doc = await ReadJsonAsync(response, cancellationToken).ConfigureAwait(false);
        return doc.RootElement.GetProperty("Id").GetString()!;
    }

    public async Task StartAsync(string id, CancellationToken cancellationToken)
    {
        using var response = await SendVersionedAsync(HttpMethod.Post, $"/containers/{id}/start", null, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Blocks until the container is not running and returns its exit code.</summary>
    public async Task<int> WaitAsync(string id, CancellationToken cancellationToken)
    {
        using var response = await SendVersionedAsync(HttpMethod.Post, $"/containers/{id}/wait", null, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        using var doc = await ReadJsonAsync(response, cancellationToken).ConfigureAwait(false);
        return doc.RootElement.GetProperty("StatusCode").GetInt32();
    }

    /// <summary>Sends SIGKILL. A container that is already gone or not running is not an error.</summary>
    public async Task KillAsync(string id, CancellationToken cancellationToken)
    {
        using var response = await SendVersionedAsync(HttpMethod.Post, $"/containers/{id}/kill", null, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Conflict)
        {
            return;
        }

        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes the container and its anonymous volumes. A container already gone is not an error.</summary>
    public async Task RemoveAsync(string id, bool force, CancellationToken cancellationToken)
    {
        using var response = await SendVersionedAsync(HttpMethod.Delete, $"/containers/{id}?v=1&force={(force ? 1 : 0)}", null, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return;
        }

        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Throws a 404 <see cref="DockerApiException"/> when there is no such container.</summary>
    public async Task<ContainerInspect> InspectAsync(string id, CancellationToken cancellationToken)
    {
        using var response = await SendVersionedAsync(HttpMethod.Get, $"/containers/{id}/json", null, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        using var doc = await ReadJsonAsync(response, cancellationToken).ConfigureAwait(false);
        var root = doc.RootElement;
        var state = root.GetProperty("State");
        var config = root.GetProperty("Config");
        var host = root.GetProperty("HostConfig");
        return new ContainerInspect(
            root.GetProperty("Id").GetString()!,
            OptionalString(root, "Name"),
            OptionalString(root, "Path"),
            StringList(root, "Args"),
            new ContainerInspectState(
                OptionalString(state, "Status") ?? "",
                state.GetProperty("Running").GetBoolean(),
                state.GetProperty("OOMKilled").GetBoolean(),
                state.GetProperty("ExitCode").GetInt32(),
                NonEmpty(OptionalString(state, "Error"))),
            new ContainerInspectConfig(
                OptionalString(config, "Image"),
                NonEmpty(OptionalString(config, "User")),
                NonEmpty(OptionalString(config, "WorkingDir")),
                StringList(config, "Env"),
                StringList(config, "Cmd"),
                StringList(config, "Entrypoint"),
                StringMap(config, "Labels")),
            new ContainerInspectHostConfig(
                OptionalLong(host, "Memory") ?? 0,
                OptionalLong(host, "MemorySwap") ?? 0,
                OptionalLong(host, "NanoCpus") ?? 0,
                OptionalLong(host, "PidsLimit"),
                host.TryGetProperty("ReadonlyRootfs", out var ro) && ro.ValueKind == JsonValueKind.True,
                StringList(host, "CapDrop"),
                StringList(host, "SecurityOpt")));
    }

    /// <summary>Lists containers, stopped ones included, carrying every given label (key=value).</summary>
    public async Task<IReadOnlyList<ContainerSummary>> ListContainersAsync(IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        var filters = JsonSerializer.Serialize(new Dictionary<string, string[]>
        {
            ["label"] = labels.Select(l => $"{l.Key}={l.Value}").ToArray(),
        });
        using var response = await SendVersionedAsync(HttpMethod.Get, $"/containers/json?all=1&filters={Uri.EscapeDataString(filters)}", null, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        using var doc = await ReadJsonAsync(response, cancellationToken).ConfigureAwait(false);
        return doc.RootElement.EnumerateArray()
            .Select(c => new ContainerSummary(
                c.GetProperty("Id").GetString()!,
                StringList(c, "Names"),
                OptionalString(c, "Image") ?? "",
                OptionalString(c, "State") ?? "",
                StringMap(c, "Labels")))
            .ToList();
    }

    /// <summary>Attaches to stdin, stdout and stderr of a container (created with OpenStdin and Tty=false)
    /// over a hijacked connection. Attach before start so no output is missed.</summary>
    public async Task<DockerAttachStream> AttachAsync(string id, CancellationToken cancellationToken)
    {
        var prefix = await VersionPrefixAsync(cancellationToken).ConfigureAwait(false);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await ConnectSocketAsync(socket, cancellationToken).ConfigureAwait(false);
            var request =
                $"POST {prefix}/containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n" +
                "Host: docker\r\n" +
                "Content-Type: text/plain\r\n" +
                "Content-Length: 0\r\n" +
                "Connection: Upgrade\r\n" +
                "Upgrade: tcp\r\n" +
                "\r\n";
            await socket.SendAsync(Encoding.ASCII.GetBytes(request), SocketFlags.None, cancellationToken).ConfigureAwait(false);

            var stream = new NetworkStream(socket, ownsSocket: false);
            var (status, headers, leftover) = await ReadResponseHeadAsync(stream, cancellationToken).ConfigureAwait(false);
            if (status is not (101 or 200))
            {
                var body = await ReadErrorBodyAsync(stream, headers, leftover, cancellationToken).ConfigureAwait(false);
                throw new DockerApiException((HttpStatusCode)status, EngineMessage(body, status));
            }

            return new DockerAttachStream(socket, stream, leftover);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        _negotiation.Dispose();
    }

    private async Task<string> VersionPrefixAsync(CancellationToken cancellationToken)
    {
        if (_versionPrefix is { } known)
        {
            return known;
        }

        await _negotiation.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_versionPrefix is null)
            {
                // /version is unversioned on purpose: it is how we learn which version to speak.
                using var response = await SendAsync(HttpMethod.Get, "/version", null, cancellationToken).ConfigureAwait(false);
                await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
                using var doc = await ReadJsonAsync(response, cancellationToken).ConfigureAwait(false);
                var server = Version.Parse(doc.RootElement.GetProperty("ApiVersion").GetString()!);
                var chosen = server < MaxApiVersion ? server : MaxApiVersion;
                _versionPrefix = $"/v{chosen.Major}.{chosen.Minor}";
            }

            return _versionPrefix;
        }
        finally
        {
            _negotiation.Release();
        }
    }

    private async Task<HttpResponseMessage> SendVersionedAsync(HttpMethod method, string pathAndQuery, HttpContent? content, CancellationToken cancellationToken)
    {
        var prefix = await VersionPrefixAsync(cancellationToken).ConfigureAwait(false);
        return await SendAsync(method, prefix + pathAndQuery, content, cancellationToken).ConfigureAwait(false);
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string pathAndQuery, HttpContent? content, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, pathAndQuery) { Content = content };
        try
        {
            return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException || e.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.InvalidResponse)
        {
            throw new DockerUnavailableException($"Docker engine not reachable at {Endpoint}: {(e.InnerException ?? e).Message}", e);
        }
    }

    private async ValueTask<Stream> ConnectAsync(CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            // SocketExceptions pass through: SendAsync turns them into DockerUnavailableException.
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private async Task ConnectSocketAsync(Socket socket, CancellationToken cancellationToken)
    {
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new DockerUnavailableException($"Docker engine not reachable at {Endpoint}: {e.Message}", e);
        }
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        throw new DockerApiException(response.StatusCode, EngineMessage(body, (int)response.StatusCode));
    }

    /// <summary>The engine's errors are {"message": "..."}; anything else is passed on as it came.</summary>
    private static string EngineMessage(string body, int status)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("message", out var message))
            {
                return message.GetString() ?? $"Docker engine answered {status}";
            }
        }
        catch (JsonException)
        {
        }

        return string.IsNullOrWhiteSpace(body) ? $"Docker engine answered {status}" : body.Trim();
    }

    private static HttpContent ToJsonContent<T>(T value) => System.Net.Http.Json.JsonContent.Create(value, options: Json);

    private static async Task<JsonDocument> ReadJsonAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        return await JsonDocument.ParseAsync(stream, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads "HTTP/1.1 101 UPGRADED" and its headers. Bytes read past the blank line are
    /// the start of the raw stream and are handed back.</summary>
    private static async Task<(int Status, Dictionary<string, string> Headers, byte[] Leftover)> ReadResponseHeadAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[1024];
        int end;
        while ((end = IndexOfHeaderEnd(buffer.GetBuffer().AsSpan(0, (int)buffer.Length))) < 0)
        {
            if (buffer.Length > 64 * 1024)
            {
                throw new DockerUnavailableException("Docker engine sent an oversized response head on attach");
            }

            var read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw new DockerUnavailableException("Docker engine closed the connection during attach");
            }

            buffer.Write(chunk, 0, read);
        }

        var all = buffer.ToArray();
        var lines = Encoding.ASCII.GetString(all, 0, end).Split("\r\n");
        var statusParts = lines[0].Split(' ', 3);
        if (statusParts.Length < 2 || !int.TryParse(statusParts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var status))
        {
            throw new DockerUnavailableException($"Docker engine sent an unexpected attach response: {lines[0]}");
        }

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':');
            if (colon > 0)
            {
                headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
            }
        }

        return (status, headers, all[(end + 4)..]);
    }

    private static int IndexOfHeaderEnd(ReadOnlySpan<byte> bytes) => bytes.IndexOf("\r\n\r\n"u8);

    private static async Task<string> ReadErrorBodyAsync(Stream stream, Dictionary<string, string> headers, byte[] leftover, CancellationToken cancellationToken)
    {
        var body = new MemoryStream();
        body.Write(leftover);
        var length = headers.TryGetValue("Content-Length", out var value) && int.TryParse(value, CultureInfo.InvariantCulture, out var parsed) ? parsed : -1;
        var chunk = new byte[1024];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            while (length < 0 || body.Length < length)
            {
                var read = await stream.ReadAsync(chunk, timeout.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                body.Write(chunk, 0, read);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // A body without length on a kept-alive connection: what arrived is all we report.
        }

        return Encoding.UTF8.GetString(body.ToArray());
    }

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private static string? OptionalString(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static long? OptionalLong(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number ? value.GetInt64() : null;

    private static IReadOnlyList<string> StringList(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Array
            ? value.EnumerateArray().Select(v => v.GetString() ?? "").ToList()
            : [];

    private static IReadOnlyDictionary<string, string> StringMap(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Object
            ? value.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "")
            : new Dictionary<string, string>();
}
