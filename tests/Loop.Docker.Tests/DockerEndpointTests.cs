namespace Loop.Docker.Tests;

/// <summary>The engine is found as the docker CLI finds it. A temp dir stands in for the home.</summary>
public sealed class DockerEndpointTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("loop-docker-endpoint-").FullName;
    private readonly Dictionary<string, string?> _environment = [];

    public void Dispose() => Directory.Delete(_home, recursive: true);

    private DockerEndpoint Resolve() => DockerEndpoint.Resolve(name => _environment.GetValueOrDefault(name), _home);

    private DockerEndpointException Refused() => Assert.Throws<DockerEndpointException>(Resolve);

    private string DockerDir => Path.Combine(_home, ".docker");

    /// <summary>As `docker context create NAME --docker host=HOST` stores it.</summary>
    private void AddContext(string name, string host, string? configDir = null, bool skipTlsVerify = false)
    {
        var id = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name)));
        var dir = Directory.CreateDirectory(Path.Combine(configDir ?? DockerDir, "contexts", "meta", id)).FullName;
        File.WriteAllText(Path.Combine(dir, "meta.json"),
            System.Text.Json.JsonSerializer.Serialize(new
            {
                Name = name,
                Metadata = new { },
                Endpoints = new { docker = new { Host = host, SkipTLSVerify = skipTlsVerify } },
            }));
    }

    private void SetCurrentContext(string name)
    {
        Directory.CreateDirectory(DockerDir);
        File.WriteAllText(Path.Combine(DockerDir, "config.json"), $$"""{"auths":{},"currentContext":"{{name}}"}""");
    }

    [Fact]
    public void Without_settings_the_default_socket_is_used()
    {
        Assert.Equal(new DockerEndpoint("unix:///var/run/docker.sock"), Resolve());

        _environment["DOCKER_HOST"] = "";
        _environment["DOCKER_CONTEXT"] = "";
        Assert.Equal(new DockerEndpoint("unix:///var/run/docker.sock"), Resolve());
    }

    [Fact]
    public void DOCKER_HOST_names_a_unix_socket_as_given()
    {
        _environment["DOCKER_HOST"] = "unix:///run/other/docker.sock";

        Assert.Equal(new DockerEndpoint("unix:///run/other/docker.sock"), Resolve());
    }

    [Fact]
    public void DOCKER_HOST_tcp_is_plain_and_gets_the_clis_default_port()
    {
        _environment["DOCKER_HOST"] = "tcp://build-box.internal:2375";
        Assert.Equal(new DockerEndpoint("tcp://build-box.internal:2375"), Resolve());

        _environment["DOCKER_HOST"] = "tcp://build-box.internal";
        Assert.Equal(new DockerEndpoint("tcp://build-box.internal:2375"), Resolve());

        // No scheme means tcp, as for the CLI.
        _environment["DOCKER_HOST"] = "10.1.2.3:4243";
        Assert.Equal(new DockerEndpoint("tcp://10.1.2.3:4243"), Resolve());
    }

    [Fact]
    public void DOCKER_TLS_VERIFY_turns_on_TLS_with_the_certificates_of_DOCKER_CERT_PATH_or_the_docker_dir()
    {
        _environment["DOCKER_HOST"] = "tcp://build-box.internal";
        _environment["DOCKER_TLS_VERIFY"] = "1";
        Assert.Equal(new DockerEndpoint("tcp://build-box.internal:2376", DockerDir), Resolve());

        _environment["DOCKER_CERT_PATH"] = "/etc/loop/docker-certs";
        Assert.Equal(new DockerEndpoint("tcp://build-box.internal:2376", "/etc/loop/docker-certs"), Resolve());

        _environment["DOCKER_CONFIG"] = "/etc/loop/docker";
        _environment["DOCKER_CERT_PATH"] = null;
        Assert.Equal(new DockerEndpoint("tcp://build-box.internal:2376", "/etc/loop/docker"), Resolve());
    }

    [Fact]
    public void TLS_that_checks_nothing_is_refused()
    {
        _environment["DOCKER_HOST"] = "tcp://build-box.internal:2376";
        _environment["DOCKER_TLS"] = "1";

        var error = Refused();

        Assert.Equal("tcp://build-box.internal:2376", error.Where);
        Assert.Contains("set DOCKER_TLS_VERIFY=1", error.Message);
    }

    [Fact]
    public void Hosts_other_than_unix_and_tcp_are_refused_saying_which_are_supported()
    {
        _environment["DOCKER_HOST"] = "ssh://me@build-box";

        var error = Refused();

        Assert.Equal("ssh://me@build-box", error.Where);
        Assert.Equal("ssh:// hosts are not supported, only unix:// and tcp://", error.Message);
    }

    [Fact]
    public void DOCKER_CONTEXT_is_read_from_the_contexts_meta_named_by_the_sha256_of_its_name()
    {
        // The directory docker itself uses for Docker Desktop's context.
        var meta = Path.Combine(DockerDir, "contexts", "meta", "fe9c6bd7a66301f49ca9b6a70b217107cd1284598bfc254700c989b916da791e");
        Directory.CreateDirectory(meta);
        File.WriteAllText(Path.Combine(meta, "meta.json"),
            """{"Name":"desktop-linux","Metadata":{"Description":"Docker Desktop"},"Endpoints":{"docker":{"Host":"unix:///home/ann/.docker/desktop/docker.sock","SkipTLSVerify":false}}}""");
        _environment["DOCKER_CONTEXT"] = "desktop-linux";

        Assert.Equal(new DockerEndpoint("unix:///home/ann/.docker/desktop/docker.sock"), Resolve());
    }

    [Theory]
    [InlineData("unix:///var/run/docker.sock", "/var/run/docker.sock")]
    [InlineData("unix:///home/ann/.docker/desktop/docker.sock", "/home/ann/.docker/desktop/docker.sock")]
    [InlineData("tcp://build-box.internal:2375", null)]
    public void The_socket_path_is_that_of_a_unix_host_and_none_for_tcp(string host, string? socket) =>
        Assert.Equal(socket, new DockerEndpoint(host).SocketPath);

    [Fact]
    public void The_current_context_of_config_json_is_used_unless_DOCKER_CONTEXT_names_another()
    {
        AddContext("remote", "tcp://remote.internal:2375");
        AddContext("local", "unix:///run/user/1000/docker.sock");
        SetCurrentContext("remote");
        Assert.Equal(new DockerEndpoint("tcp://remote.internal:2375"), Resolve());

        _environment["DOCKER_CONTEXT"] = "local";
        Assert.Equal(new DockerEndpoint("unix:///run/user/1000/docker.sock"), Resolve());
    }

    [Fact]
    public void DOCKER_HOST_wins_over_contexts()
    {
        AddContext("remote", "tcp://remote.internal:2375");
        SetCurrentContext("remote");
        _environment["DOCKER_CONTEXT"] = "remote";
        _environment["DOCKER_HOST"] = "unix:///run/other/docker.sock";

        Assert.Equal(new DockerEndpoint("unix:///run/other/docker.sock"), Resolve());
    }

    [Fact]
    public void The_default_context_is_the_default_socket()
    {
        SetCurrentContext("default");
        Assert.Equal(new DockerEndpoint(DockerEndpoint.DefaultHost), Resolve());

        _environment["DOCKER_CONTEXT"] = "default";
        Assert.Equal(new DockerEndpoint(DockerEndpoint.DefaultHost), Resolve());
    }

    [Fact]
    public void DOCKER_CONFIG_moves_the_config_and_its_contexts()
    {
        var elsewhere = Path.Combine(_home, "elsewhere");
        AddContext("remote", "tcp://remote.internal:2375", elsewhere);
        File.WriteAllText(Path.Combine(elsewhere, "config.json"), """{"currentContext":"remote"}""");
        _environment["DOCKER_CONFIG"] = elsewhere;

        Assert.Equal(new DockerEndpoint("tcp://remote.internal:2375"), Resolve());
    }

    [Fact]
    public void A_context_with_TLS_files_is_reached_over_TLS_with_them()
    {
        AddContext("secure", "tcp://secure.internal:2376");
        var id = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("secure"u8));
        var tls = Directory.CreateDirectory(Path.Combine(DockerDir, "contexts", "tls", id, "docker")).FullName;
        File.WriteAllText(Path.Combine(tls, "ca.pem"), "");
        _environment["DOCKER_CONTEXT"] = "secure";

        Assert.Equal(new DockerEndpoint("tcp://secure.internal:2376", tls), Resolve());
    }

    [Fact]
    public void A_context_that_skips_TLS_verification_is_refused()
    {
        AddContext("insecure", "tcp://insecure.internal:2376", skipTlsVerify: true);
        _environment["DOCKER_CONTEXT"] = "insecure";

        var error = Refused();

        Assert.Equal("context \"insecure\"", error.Where);
        Assert.Contains("skips TLS verification", error.Message);
    }

    [Fact]
    public void An_unknown_context_is_refused_saying_where_it_was_looked_for()
    {
        SetCurrentContext("gone");

        var error = Refused();

        Assert.Equal("context \"gone\"", error.Where);
        Assert.StartsWith("there is no such context (", error.Message);
        Assert.Contains(Path.Combine(DockerDir, "contexts", "meta"), error.Message);
    }

    [Fact]
    public void An_unreadable_config_json_is_refused_naming_the_file()
    {
        Directory.CreateDirectory(DockerDir);
        File.WriteAllText(Path.Combine(DockerDir, "config.json"), "{ not json");

        var error = Refused();

        Assert.Contains(Path.Combine(DockerDir, "config.json"), error.Message);
    }

    [Fact]
    public async Task An_engine_whose_settings_are_wrong_reports_them_as_unreachable_instead_of_failing_to_start()
    {
        _environment["DOCKER_HOST"] = "ssh://me@build-box";
        using var engine = DockerEngine.From(Resolve);

        var error = await Assert.ThrowsAsync<DockerUnavailableException>(() => engine.PingAsync(CancellationToken.None));

        Assert.Equal("ssh://me@build-box", engine.Endpoint);
        Assert.Equal("Docker engine not reachable at ssh://me@build-box: ssh:// hosts are not supported, only unix:// and tcp://", error.Message);
    }
}
