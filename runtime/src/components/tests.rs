//! Loading whole component files: typed definitions, located errors, presets.

#[cfg(test)]
mod loading {
    use std::time::Duration;

    use sluice_connector::consume::OffsetReset;
    use sluice_connector::produce::{Acks, Compression};
    use sluice_connector::Bootstrap;

    use super::super::*;

    fn load(text: &str) -> Result<Components, LoadErrors> {
        Components::from_sources(vec![(PathBuf::from("t.xml"), text.to_string())])
    }

    #[test]
    fn builds_typed_definitions_with_defaults() {
        let components = load(
            r#"<components>
                 <connection id="k"><bootstrap-servers>a:1, b:2</bootstrap-servers><consumer-group>g</consumer-group></connection>
                 <operation id="p" type="produce" connection="k"><topic>t</topic><compression>zstd</compression></operation>
                 <operation id="c" type="consume" connection="k"><topic>t</topic><maximum-wait>1500ms</maximum-wait></operation>
                 <process id="x"><start operation="c"/><steps><connector operation="p"/></steps></process>
               </components>"#,
        )
        .expect("valid");
        let connection = &components.connections["k"].config;
        assert_eq!(
            connection.bootstrap,
            Bootstrap::Servers(vec![
                "a:1".parse().expect("host:port"),
                "b:2".parse().expect("host:port")
            ])
        );
        assert_eq!(connection.client_id, "sluice");
        let OperationKind::Produce(produce) = &components.operations["p"].kind else {
            panic!("produce")
        };
        assert_eq!(
            (produce.settings.acks, produce.settings.compression),
            (Acks::All, Compression::Zstd)
        );
        assert_eq!(produce.settings.delivery_timeout, Duration::from_secs(30));
        assert!(!produce.dynamic_topic);
        let OperationKind::Consume(consume) = &components.operations["c"].kind else {
            panic!("consume")
        };
        assert_eq!(consume.maximum_wait, Duration::from_millis(1500));
        assert_eq!(consume.minimum_messages, 1);
        assert_eq!(consume.offset_reset, OffsetReset::Latest);
        assert!(!consume.autocommit);
        assert_eq!(
            consume.consumer_group, None,
            "the connection's group applies at run time"
        );
        let process = &components.processes["x"];
        assert_eq!(process.start.as_ref().map(|s| s.id.as_str()), Some("c"));
        assert_eq!(
            process.start.as_ref().map(|s| s.at.to_string()).as_deref(),
            Some("t.xml:5:41")
        );
        assert_eq!(process.steps.len(), 1);
    }

    #[test]
    fn an_error_names_place_component_field_and_valid_values() {
        let err = load(
            "<operation id=\"o\" type=\"consume\" connection=\"k\">\n  <topic>t</topic>\n  \
             <offset-reset>oldest</offset-reset>\n</operation>",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.xml:3:3: operation \"o\": offset-reset must be one of earliest, latest; got \"oldest\""
        );
    }

    #[test]
    fn an_invalid_connection_does_not_cascade_into_reference_errors() {
        let err = load(
            r#"<components>
                 <connection id="k"><bootstrap-servers>nope</bootstrap-servers></connection>
                 <operation id="p" type="produce" connection="k"><topic>t</topic></operation>
               </components>"#,
        )
        .unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
    }
}

#[cfg(test)]
mod set_properties {
    use super::super::*;

    fn errors(steps: &str) -> Vec<String> {
        let text = format!(
            "<components>\n<connection id=\"k\"><bootstrap-servers>a:1</bootstrap-servers></connection>\n\
             <operation id=\"p\" type=\"produce\" connection=\"k\"><topic>t</topic></operation>\n\
             <process id=\"x\"><steps>\n{steps}\n<connector operation=\"p\"/></steps></process>\n</components>"
        );
        match Components::from_sources(vec![(PathBuf::from("t.xml"), text)]) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn valid_steps_load() {
        assert!(errors(
            r#"<set-properties><property name="header:h" from-tracked="header:x" optional="true"/>
               <property name="partition" value="2"/><property name="message-key" from-property="topic-name"/>
               <property name="message-key" template="{header:a}-{tracked:offset}" regex="^(.*)-0$"/></set-properties>"#
        )
        .is_empty());
    }

    #[test]
    fn each_mistake_is_located_and_says_what_is_valid() {
        assert_eq!(
            errors(r#"<set-properties><property name="key" value="x"/></set-properties>"#),
            [
                "t.xml:5:27: process \"x\": set-properties: name must be message-key, topic-name, \
              partition, timestamp or header:NAME, got \"key\""
            ]
        );
        assert_eq!(
            errors(r#"<set-properties><property name="partition" value="first"/></set-properties>"#),
            ["t.xml:5:44: process \"x\": set-properties: value for partition must be a partition \
              number (a whole number ≥ 0), got \"first\""]
        );
        assert_eq!(
            errors(r#"<set-properties><property name="message-key" value="a" from-header="b"/></set-properties>"#),
            ["t.xml:5:27: process \"x\": set-properties: property message-key needs exactly one of \
              value, from-property, from-header, from-tracked or template"]
        );
        assert_eq!(
            errors(r#"<set-properties><property name="message-key" from-header="k" regex="(x"/></set-properties>"#),
            ["t.xml:5:62: process \"x\": set-properties: regex \"(x\" is not a valid regular \
              expression: unclosed group (at character 1; the syntax is that of the Rust regex crate)"]
        );
        assert_eq!(
            errors(
                r#"<set-properties><property name="message-key" value="k" regex="k"/></set-properties>"#
            ),
            [
                "t.xml:5:56: process \"x\": set-properties: regex takes part of a value from the \
              document (from-property, from-header, from-tracked or template); with a constant \
              value, write the part you want"
            ]
        );
        assert_eq!(
            errors(
                r#"<set-properties><property name="message-key" template="{header:t}-{tenant}"/></set-properties>"#
            ),
            [
                "t.xml:5:46: process \"x\": set-properties: template \"{header:t}-{tenant}\": \
              {tenant} at character 12 must be {property:NAME}, {header:NAME} or {tracked:NAME}"
            ]
        );
        assert_eq!(
            errors(r#"<set-properties><property name="topic-name" from-tracked="leader"/></set-properties>"#),
            ["t.xml:5:45: process \"x\": set-properties: from-tracked must be topic, partition, \
              offset, key, timestamp or header:NAME, got \"leader\""]
        );
    }
}

#[cfg(test)]
mod presets {
    use sluice_connector::Connection;

    use super::super::*;

    const PRESETS: &str = r#"<components>
  <connection id="event-hubs-namespace" preset="azure-event-hubs">
    <namespace>contoso-orders</namespace>
    <password>Endpoint=sb://contoso-orders.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0LWtleQ==</password>
  </connection>
  <connection id="event-hubs-connection-string" preset="azure-event-hubs">
    <password>Endpoint=sb://fabrikam.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=b3RoZXIta2V5</password>
    <properties><property name="request.timeout.ms">30000</property></properties>
  </connection>
  <connection id="msk-tls" preset="amazon-msk">
    <bootstrap-servers>b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9094</bootstrap-servers>
  </connection>
  <connection id="msk-scram" preset="amazon-msk">
    <bootstrap-servers>b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9096,b-2.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9096</bootstrap-servers>
    <sasl-mechanism>SCRAM-SHA-512</sasl-mechanism>
    <username>orders</username>
    <password>msk-secret</password>
  </connection>
  <connection id="msk-iam" preset="amazon-msk">
    <bootstrap-servers>b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098,b-2.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098</bootstrap-servers>
    <sasl-mechanism>OAUTHBEARER</sasl-mechanism>
  </connection>
</components>"#;

    /// The resolved client settings of each preset, against the golden files in
    /// tests/golden/ (`SLUICE_BLESS=1` rewrites them; read the diff before committing).
    #[test]
    fn presets_resolve_to_the_golden_client_settings() {
        let components =
            Components::from_sources(vec![(PathBuf::from("presets.xml"), PRESETS.into())])
                .expect("valid presets");
        let golden = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/golden"));
        for (id, definition) in &components.connections {
            let connection = Connection::open(definition.config.clone()).expect("open");
            let mut text: String = connection
                .resolved_settings()
                .into_iter()
                .map(|(name, value)| format!("{name}={value}\n"))
                .collect();
            text.push_str(&format!(
                "# sluice: idempotence={} max.request.size cap={:?}\n",
                definition.config.idempotence,
                definition.config.service_limit.map(|l| l.max_request_size)
            ));
            let file = golden.join(format!("{id}.properties"));
            if std::env::var_os("SLUICE_BLESS").is_some() {
                std::fs::write(&file, &text).expect("write golden");
            }
            let expected = std::fs::read_to_string(&file).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (run with SLUICE_BLESS=1 to create it)",
                    file.display()
                )
            });
            assert_eq!(text, expected, "{id} differs from {}", file.display());
            assert!(
                !text.contains("c2VjcmV0LWtleQ") && !text.contains("msk-secret"),
                "{id} shows a secret"
            );
        }
    }

    fn errors(connection: &str) -> Vec<String> {
        let text = format!("<components>\n{connection}\n</components>");
        match Components::from_sources(vec![(PathBuf::from("p.xml"), text)]) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn aws_iam_needs_a_region_and_excludes_oauth() {
        let sasl = r#"<security-protocol>SASL_SSL</security-protocol><sasl-mechanism>OAUTHBEARER</sasl-mechanism>"#;
        // The region comes from the MSK host name when the field does not give it.
        let text = format!(
            "<components><connection id=\"m\"><bootstrap-servers>b-1.o.x.c2.kafka.ap-south-1.amazonaws.com:9098</bootstrap-servers>{sasl}<aws-iam/></connection></components>"
        );
        let components =
            Components::from_sources(vec![(PathBuf::from("p.xml"), text)]).expect("valid");
        let iam = components.connections["m"]
            .config
            .sasl
            .as_ref()
            .and_then(|s| s.aws_iam.clone())
            .expect("aws-iam");
        assert_eq!(iam.region, "ap-south-1");
        assert_eq!(iam.profile, None);
        if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            assert_eq!(
                errors(&format!(
                    r#"<connection id="m"><bootstrap-servers>broker:9098</bootstrap-servers>{sasl}<aws-iam><profile>dev</profile></aws-iam></connection>"#
                )),
                ["p.xml:2:161: connection \"m\": aws-iam needs the cluster's region: write \
                  <aws-iam><region>eu-west-1</region></aws-iam> (the bootstrap servers do not name \
                  one, as MSK's b-1.NAME.ID.c2.kafka.REGION.amazonaws.com do, and AWS_REGION is not \
                  set)"]
            );
        }
        assert_eq!(
            errors(&format!(
                r#"<connection id="m"><bootstrap-servers>broker:9098</bootstrap-servers>{sasl}<aws-iam><region>Ireland</region></aws-iam></connection>"#
            )),
            ["p.xml:2:170: connection \"m\": aws-iam/region must be an AWS region such as eu-west-1, got \"Ireland\""]
        );
        assert_eq!(
            errors(&format!(
                r#"<connection id="m"><bootstrap-servers>broker:9098</bootstrap-servers>{sasl}<oauth><token-endpoint>https://idp/token</token-endpoint></oauth><aws-iam/></connection>"#
            )),
            ["p.xml:2:226: connection \"m\": aws-iam and oauth exclude each other: Amazon MSK IAM \
              signs its own tokens with AWS credentials; keep one"]
        );
        assert_eq!(
            errors(r#"<connection id="m"><bootstrap-servers>broker:9096</bootstrap-servers><security-protocol>SASL_SSL</security-protocol><sasl-mechanism>PLAIN</sasl-mechanism><username>u</username><password>p</password><aws-iam/></connection>"#),
            ["p.xml:2:199: connection \"m\": aws-iam applies only to sasl-mechanism OAUTHBEARER (this connection's is PLAIN)"]
        );
    }

    #[test]
    fn presets_refuse_what_the_service_does_not_do() {
        assert_eq!(
            errors(r#"<connection id="m" preset="amazon-msk"><bootstrap-servers>b-1.x.amazonaws.com:9096</bootstrap-servers></connection>"#),
            ["p.xml:2:40: connection \"m\": bootstrap-servers \"b-1.x.amazonaws.com:9096\": Amazon MSK \
              serves TLS on port 9094 (public access: 9194), not 9096; port 9094 is TLS, 9096 \
              SASL/SCRAM, 9098 IAM"]
        );
        assert_eq!(
            errors(
                r#"<connection id="m" preset="amazon-msk"><bootstrap-servers>b-1.x.kafka.eu-west-1.amazonaws.com:9096</bootstrap-servers><sasl-mechanism>OAUTHBEARER</sasl-mechanism></connection>"#
            ),
            ["p.xml:2:40: connection \"m\": bootstrap-servers \
                 \"b-1.x.kafka.eu-west-1.amazonaws.com:9096\": Amazon MSK serves IAM on port 9098 \
                 (public access: 9198), not 9096; port 9094 is TLS, 9096 SASL/SCRAM, 9098 IAM"]
        );
        assert_eq!(
            errors(
                r#"<connection id="m" preset="amazon-msk"><bootstrap-servers>b-1.x.kafka.eu-west-1.amazonaws.com:9098</bootstrap-servers><sasl-mechanism>AWS_MSK_IAM</sasl-mechanism></connection>"#
            ),
            [
                "p.xml:2:119: connection \"m\": sasl-mechanism AWS_MSK_IAM is the Java client's \
                 name for Amazon MSK IAM; Sluice speaks it as OAUTHBEARER: write \
                 <sasl-mechanism>OAUTHBEARER</sasl-mechanism> with preset=\"amazon-msk\" (or with \
                 <aws-iam/>)"
            ]
        );
        let leaked = errors(
            r#"<connection id="e" preset="azure-event-hubs"><password>not-a-connection-string</password></connection>"#,
        );
        assert_eq!(
            leaked,
            [
                "p.xml:2:46: connection \"e\": password must be the Event Hubs connection string \
              (Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…), from the namespace's \
              Shared access policies in the Azure portal"
            ]
        );
        assert_eq!(
            errors(r#"<connection id="e" preset="azure-event-hubs"><password>Endpoint=sb://n.servicebus.windows.net/;SharedAccessKey=k</password><properties><property name="request.timeout.ms">5000</property></properties></connection>"#),
            ["p.xml:2:124: connection \"e\": properties request.timeout.ms must be at least 20000 \
              for Azure Event Hubs, which can take that long to answer"]
        );
        assert_eq!(
            errors(r#"<connection id="x" preset="confluent-cloud"><bootstrap-servers>b:9092</bootstrap-servers></connection>"#),
            ["p.xml:2:20: connection \"x\": preset must be one of azure-event-hubs, amazon-msk; got \"confluent-cloud\""]
        );
    }
}

#[cfg(test)]
mod listen {
    use super::super::*;

    fn load(body: &str) -> Result<Components, Vec<String>> {
        let text = format!(
            "<components>\n<connection id=\"k\"><bootstrap-servers>a:1</bootstrap-servers>\
             <consumer-group>g</consumer-group></connection>\n\
             <operation id=\"p\" type=\"produce\" connection=\"k\"><topic>t</topic></operation>\n\
             {body}\n</components>"
        );
        Components::from_sources(vec![(PathBuf::from("l.xml"), text)])
            .map_err(|e| e.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_listen_operation_with_its_defaults_starts_a_process() {
        let components = load(
            r#"<operation id="l" type="listen" connection="k"><topic>a, b</topic></operation>
<process id="x"><start operation="l"/><steps><connector operation="p"/></steps></process>"#,
        )
        .expect("valid");
        let OperationKind::Listen(listen) = &components.operations["l"].kind else {
            panic!("a listen operation");
        };
        assert_eq!(listen.topics, ["a", "b"]);
        assert_eq!(listen.max_messages.get(), 100);
        assert_eq!(listen.retry_limit, 3);
        assert_eq!(listen.retry_backoff, std::time::Duration::from_secs(1));
        assert_eq!(listen.dead_letter_topic, None);
        assert_eq!(components.listener_processes(), ["x"]);
    }

    #[test]
    fn listen_settings_that_cannot_work_are_refused() {
        assert_eq!(
            load(
                r#"<operation id="l" type="listen" connection="k"><topic>a, b</topic><partitions>0</partitions><dead-letter-topic>b</dead-letter-topic><max-messages>0</max-messages></operation>"#
            )
            .unwrap_err(),
            [
                "l.xml:4:67: operation \"l\": partitions applies to one topic; listen to several \
                 topics without partitions (the group assigns them), or use one listen operation \
                 per topic",
                "l.xml:4:93: operation \"l\": dead-letter-topic \"b\" is a topic this operation \
                 listens to: failed documents would come back forever; name another topic",
                "l.xml:4:133: operation \"l\": max-messages must be a whole number ≥ 1 (at most \
                 4294967295), got \"0\"",
            ]
        );
        assert_eq!(
            load(
                r#"<operation id="l" type="listen" connection="k"><topic>a</topic></operation>
<process id="x"><steps><connector operation="l"/></steps></process>"#
            )
            .unwrap_err(),
            ["l.xml:5:35: process \"x\": step 1: operation \"l\" is a listen operation, which can \
              only start a process: <start operation=\"l\"/>"]
        );
    }
}

#[cfg(test)]
mod runnable {
    use super::super::*;

    const BODY: &str = r#"<components>
         <connection id="good"><bootstrap-servers>a:1</bootstrap-servers></connection>
         <connection id="bad"><bootstrap-servers>no port</bootstrap-servers></connection>
         <operation id="send" type="produce" connection="good"><topic>t</topic></operation>
         <operation id="send-bad" type="produce" connection="bad"><topic>t</topic></operation>
         <operation id="listen-bad" type="listen" connection="good"><topic>bad topic</topic><consumer-group>g</consumer-group></operation>
         <process id="fine"><steps><connector operation="send"/></steps></process>
         <process id="broken"><steps><connector operation="send"/><connector operation="send-bad"/></steps></process>
         <process id="deaf"><start operation="listen-bad"/><steps><connector operation="send"/></steps></process>
       </components>"#;

    fn loaded() -> Loaded {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("c.xml");
        std::fs::write(&file, BODY).expect("write");
        Components::load_runnable(&[file])
    }

    #[test]
    fn a_broken_component_stops_only_the_processes_that_use_it() {
        let loaded = loaded();
        assert_eq!(loaded.errors.len(), 2, "{:?}", loaded.errors);
        let runnable: Vec<&String> = loaded.components.processes.keys().collect();
        assert_eq!(runnable, ["fine"]);
        assert!(!loaded.components.connections.contains_key("bad"));
        assert!(!loaded.components.operations.contains_key("send-bad"));
        the_one_error(
            &loaded.unrunnable["broken"],
            "connection \"bad\": bootstrap-servers",
        );
    }

    #[test]
    fn a_process_whose_listen_operation_is_invalid_is_still_a_listener() {
        let loaded = loaded();
        assert_eq!(
            loaded.unrunnable_listeners.iter().collect::<Vec<_>>(),
            ["deaf"]
        );
        the_one_error(
            &loaded.unrunnable["deaf"],
            "operation \"listen-bad\": topic",
        );
    }

    #[track_caller]
    fn the_one_error(errors: &[LoadError], expected: &str) {
        assert_eq!(errors.len(), 1, "{errors:?}");
        let error = errors[0].to_string();
        assert!(error.contains(expected), "{error}");
    }
}

#[cfg(test)]
mod one_pass {
    use super::super::*;

    fn errors(text: &str) -> Vec<String> {
        match Components::from_sources(vec![(PathBuf::from("o.xml"), text.to_string())]) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn unknown_elements_and_attributes_do_not_hide_the_other_errors() {
        // Two unknown elements (one with children), an unknown attribute, an element given
        // twice and a bad value in one operation: all five at once, in file order.
        let found = errors(
            r#"<components>
<connection id="k"><bootstrap-servers>a:1</bootstrap-servers><consumer-group>g</consumer-group></connection>
<operation id="l" type="listen" connection="k" colour="blue">
  <topik>t</topik>
  <extra><nested>1</nested></extra>
  <topic>t</topic>
  <retry-limit>many</retry-limit>
  <max-messages>5</max-messages><max-messages>6</max-messages>
</operation>
</components>"#,
        );
        assert_eq!(found.len(), 5, "{found:#?}");
        for (error, expected) in found.iter().zip([
            "o.xml:3:48: operation \"l\": unknown attribute colour",
            "o.xml:4:3: operation \"l\": unknown element <topik>; did you mean <topic>?",
            "o.xml:5:3: operation \"l\": unknown element <extra>",
            "o.xml:7:3: operation \"l\": retry-limit must be a whole number",
            "o.xml:8:33: operation \"l\": element <max-messages> is given twice; give it once",
        ]) {
            assert!(error.starts_with(expected), "{error}\nexpected: {expected}");
        }
    }
}
