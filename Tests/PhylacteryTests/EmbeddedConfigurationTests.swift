import Phylactery
import PhylacteryEmbedded
import Testing

@Suite struct EmbeddedConfigurationTests {
    @Test func dataDirectoryPrecedence() {
        #expect(EmbeddedServer.Configuration.fromEnvironment(["PHYLACTERY_HOME": "/a", "XDG_DATA_HOME": "/b", "HOME": "/c"], asRoot: false).home == "/a")
        #expect(EmbeddedServer.Configuration.fromEnvironment(["XDG_DATA_HOME": "/b", "HOME": "/c"], asRoot: false).home == "/b/phylactery")
        #expect(EmbeddedServer.Configuration.fromEnvironment(["HOME": "/c"], asRoot: false).home == "/c/.local/share/phylactery")
        #expect(EmbeddedServer.Configuration.fromEnvironment(["HOME": "/c", "PHYLACTERY_PG_BIN": "/pg/bin"], asRoot: false).pgBinOverride == "/pg/bin")
    }

    @Test func asRootTheDefaultHomeIsASystemLocationNotRootsHome() {
        #expect(EmbeddedServer.Configuration.systemHome == "/var/lib/phylactery")
        #expect(EmbeddedServer.Configuration.fromEnvironment(["HOME": "/root"], asRoot: true).home == "/var/lib/phylactery")
        #expect(EmbeddedServer.Configuration.fromEnvironment(["HOME": "/root", "XDG_DATA_HOME": "/root/.local/share"], asRoot: true).home == "/var/lib/phylactery")
        #expect(EmbeddedServer.Configuration.fromEnvironment(["HOME": "/root", "PHYLACTERY_HOME": "/srv/ph"], asRoot: true).home == "/srv/ph")
    }

    @Test func layoutAndURL() {
        let server = EmbeddedServer(configuration: .init(home: "/srv/ph", port: 5499))
        #expect(server.configuration.socketPath == "/srv/ph/run/.s.PGSQL.5499")
        #expect(server.configuration.dataDirectory == "/srv/ph/data")
        #expect(server.url.unredacted == "postgres://phylactery@/phylactery?host=/srv/ph/run&port=5499")
    }

    @Test func wheelPinIsTheOneFromTheIssue() {
        #expect(Distribution.pinnedSHA256["x86_64"] == "321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65")
        #expect(Distribution.wheelVersion == "18.6.3")
    }
}
